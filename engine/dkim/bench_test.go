package dkim

import (
	"strings"
	"testing"
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

func benchSign(b *testing.B, keyFile string, size int) {
	s, err := New([]KeyConfig{{Domain: "sender.example", Selector: "s", KeyFile: keyFile}})
	if err != nil {
		b.Fatal(err)
	}
	msg := benchMessage(size)
	domains := []string{"sender.example"}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(msg, domains); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

func BenchmarkSignRSA2048_2KB(b *testing.B)   { benchSign(b, "testdata/rsa2048-pkcs1.pem", 2<<10) }
func BenchmarkSignRSA2048_100KB(b *testing.B) { benchSign(b, "testdata/rsa2048-pkcs1.pem", 100<<10) }
func BenchmarkSignEd25519_2KB(b *testing.B)   { benchSign(b, "testdata/ed25519-pkcs8.pem", 2<<10) }
func BenchmarkSignEd25519_100KB(b *testing.B) { benchSign(b, "testdata/ed25519-pkcs8.pem", 100<<10) }

// BenchmarkSignParallel signs 2 KB messages with RSA-2048 from GOMAXPROCS
// goroutines: Sign takes no lock, so this scales with the cores.
func BenchmarkSignParallel(b *testing.B) {
	s, err := New([]KeyConfig{{Domain: "sender.example", Selector: "s", KeyFile: "testdata/rsa2048-pkcs1.pem"}})
	if err != nil {
		b.Fatal(err)
	}
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
