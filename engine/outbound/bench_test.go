package outbound

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gannet/engine/trace"
)

// fastReceiver is a minimal pipelining SMTP server for benchmarks: it
// answers every command, buffers its replies while more input is waiting
// (so a pipelined group gets one write back) and discards message bodies.
// With chunking it offers CHUNKING (RFC 3030) too.
func fastReceiver(tb testing.TB, chunking bool) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveFast(c, chunking)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func serveFast(c net.Conn, chunking bool) {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 4096)
	bw.WriteString("220 fast.test ESMTP\r\n")
	bw.Flush()
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		switch {
		case len(line) >= 4 && strings.EqualFold(string(line[:4]), "EHLO"):
			bw.WriteString("250-fast.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n")
			if chunking {
				bw.WriteString("250-CHUNKING\r\n")
			}
			bw.WriteString("250 ENHANCEDSTATUSCODES\r\n")
		case len(line) >= 5 && strings.EqualFold(string(line[:5]), "BDAT "):
			f := strings.Fields(string(line))
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return
			}
			if _, err := br.Discard(int(n)); err != nil {
				return
			}
			bw.WriteString("250 2.0.0 OK\r\n")
		case len(line) >= 4 && strings.EqualFold(string(line[:4]), "DATA"):
			bw.WriteString("354 go\r\n")
			bw.Flush()
			for {
				l, err := br.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if bytes.Equal(l, []byte(".\r\n")) {
					break
				}
			}
			bw.WriteString("250 2.0.0 OK\r\n")
		case len(line) >= 4 && strings.EqualFold(string(line[:4]), "QUIT"):
			bw.WriteString("221 2.0.0 bye\r\n")
			bw.Flush()
			return
		default:
			bw.WriteString("250 2.0.0 OK\r\n")
		}
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

// benchDeliver delivers env again and again over one pooled, pipelined
// connection to a fastReceiver (with CHUNKING when chunking is set).
func benchDeliver(b *testing.B, env *Envelope, chunking bool) {
	addr := fastReceiver(b, chunking)
	m := New(Options{
		Trace:    trace.NewHub(nil), // as the engine runs it, with nobody tracing
		SMTPPort: int(addr.Port()),
		TLS:      TLSPolicy{Mode: TLSDisabled},
		Limits:   func(Path) Limits { return Limits{Connections: 1} },
	})
	defer m.Close()
	route := routeTo("dst.test", "127.0.0.1")
	b.SetBytes(int64(len(env.Body)))
	b.ReportAllocs()
	for b.Loop() {
		o := m.Deliver(context.Background(), route, env)
		if o.Results[0].Status != Delivered {
			b.Fatalf("not delivered: %s", o.Results[0].Reply)
		}
	}
}

const benchLine = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusm.\r\n"

// BenchmarkDeliverPipelined measures one pooled, pipelined transaction of a
// 2 KB message with 2 recipients to an in-process receiver.
func BenchmarkDeliverPipelined(b *testing.B) {
	body := []byte("Subject: bench\r\n\r\n" + strings.Repeat(benchLine, 2048/len(benchLine)))
	benchDeliver(b, &Envelope{From: "s@src.test", Rcpts: []string{"a@dst.test", "b@dst.test"}, Body: body}, false)
}

// BenchmarkDeliverLarge measures one pooled, pipelined transaction of a
// 100 KB message with a dot line in every four: dot-stuffed after DATA, and
// as one BDAT LAST chunk to a server that offers CHUNKING.
func BenchmarkDeliverLarge(b *testing.B) {
	l := benchLine
	body := []byte("Subject: bench\r\n\r\n" + strings.Repeat(l+l+l+"."+l, 100<<10/(4*len(l))))
	env := &Envelope{From: "s@src.test", Rcpts: []string{"a@dst.test"}, Body: body}
	b.Run("DATA", func(b *testing.B) { benchDeliver(b, env, false) })
	b.Run("BDAT", func(b *testing.B) { benchDeliver(b, env, true) })
}
