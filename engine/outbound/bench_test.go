package outbound

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"gannet/engine/trace"
)

// fastReceiver is a minimal pipelining SMTP server for benchmarks: it
// answers every command, buffers its replies while more input is waiting
// (so a pipelined group gets one write back) and discards message bodies.
func fastReceiver(tb testing.TB) netip.AddrPort {
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
				serveFast(c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func serveFast(c net.Conn) {
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
			bw.WriteString("250-fast.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")
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

// BenchmarkDeliverPipelined measures one pooled, pipelined transaction of a
// 2 KB message with 2 recipients to an in-process receiver.
func BenchmarkDeliverPipelined(b *testing.B) {
	addr := fastReceiver(b)
	m := New(Options{
		Trace:    trace.NewHub(nil), // as the engine runs it, with nobody tracing
		SMTPPort: int(addr.Port()),
		TLS:      TLSPolicy{Mode: TLSDisabled},
		Limits:   func(Path) Limits { return Limits{Connections: 1} },
	})
	defer m.Close()
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusm.\r\n"
	body := []byte("Subject: bench\r\n\r\n" + strings.Repeat(line, 2048/len(line)))
	route := routeTo("dst.test", "127.0.0.1")
	env := &Envelope{From: "s@src.test", Rcpts: []string{"a@dst.test", "b@dst.test"}, Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		o := m.Deliver(context.Background(), route, env)
		if o.Results[0].Status != Delivered {
			b.Fatalf("not delivered: %s", o.Results[0].Reply)
		}
	}
}
