package dkim

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchMessage returns a message of about size bytes: a typical bulk-mail
// header and a body of 76-character lines.
func benchMessage(size int) []byte {
	var b strings.Builder
	b.WriteString("From: News <news@sender.example>\r\nTo: someone@rcpt.example\r\n" +
		"Subject: Our monthly newsletter\r\nDate: Sat, 01 Mar 2026 12:00:00 +0000\r\n" +
		"Message-ID: <20260301120000.abc@sender.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"List-Unsubscribe: <https://sender.example/u/abc>\r\n" +
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n")
	line := strings.Repeat("lorem ipsum dolor ", 5)[:74] + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// cpuTime returns the CPU time the process has used (user and system, all
// threads). The machine is shared, so the benchmarks report CPU time per
// operation beside the wall-clock ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs op b.N times and reports CPU ns/op, bytes per op and the
// allocations.
func loop(b *testing.B, bytes int, op func()) {
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkBodyHash100K hashes the relaxed body of a 100 KB plain-text
// message: Gannet's canonicalizer and, for comparison, go-msgauth's (a
// whole Ed25519 signature of the message, about 50 µs of it the
// signature).
func BenchmarkBodyHash100K(b *testing.B) {
	msg := benchMessage(100 << 10)
	_, body := splitHeader(msg, nil)
	b.Run("gannet", func(b *testing.B) {
		loop(b, len(body), func() { bodyHash(body) })
	})
	// format=flowed text (RFC 3676): a space before most line ends, and a
	// double space after each sentence, so about three changes per line.
	flowed := bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("\r\n"), []byte(" \r\n")), []byte("dolor "), []byte("dolor.  "))
	b.Run("gannet-flowed", func(b *testing.B) {
		loop(b, len(flowed), func() { bodyHash(flowed) })
	})
	b.Run("sha256-only", func(b *testing.B) { // the floor: SHA-256 of the bytes as they are
		loop(b, len(body), func() { sha256.Sum256(body) })
	})
	b.Run("go-msgauth", func(b *testing.B) {
		loop(b, len(body), func() {
			refSign(b, msg, refKey, "sender.example", "s", []string{"From"})
		})
	})
}

// BenchmarkSign100K is Sign on a 100 KB message with one key of each kind,
// and go-msgauth's signer (what Sign was before) with the same key and
// header list.
func BenchmarkSign100K(b *testing.B) { benchSign(b, 100<<10) }

// BenchmarkSign2K: the same on a 2 KB message, where the signature is
// most of the cost.
func BenchmarkSign2K(b *testing.B) { benchSign(b, 2<<10) }

func benchSign(b *testing.B, size int) {
	msg := benchMessage(size)
	domains := []string{"sender.example"}
	for _, kind := range []struct{ name, file string }{
		{"rsa2048", "testdata/rsa2048-pkcs1.pem"},
		{"ed25519", "testdata/ed25519-pkcs8.pem"},
	} {
		s := newSigners(b, []KeyConfig{{Domain: "sender.example", Selector: "s", KeyFile: kind.file}})
		b.Run(kind.name, func(b *testing.B) {
			loop(b, len(msg), func() {
				if _, err := s.Sign(msg, domains); err != nil {
					b.Fatal(err)
				}
			})
		})
		k := s.set.Load().keys[0]
		fields, _ := splitHeader(msg, nil)
		keys := headerKeys(k.names, fields)
		b.Run("go-msgauth-"+kind.name, func(b *testing.B) {
			loop(b, len(msg), func() { refSign(b, msg, k.key, "sender.example", "s", keys) })
		})
	}
}

// BenchmarkSignParallel signs 2 KB messages with RSA-2048 from GOMAXPROCS
// goroutines: Sign takes no lock, so this scales with the cores.
func BenchmarkSignParallel(b *testing.B) {
	s := newSigners(b, []KeyConfig{{Domain: "sender.example", Selector: "s", KeyFile: "testdata/rsa2048-pkcs1.pem"}})
	msg := benchMessage(2 << 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		domains := []string{"sender.example"}
		for pb.Next() {
			if _, err := s.Sign(msg, domains); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}
