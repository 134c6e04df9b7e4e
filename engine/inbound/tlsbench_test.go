package inbound

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// The TLS benchmarks measure what TLS costs per connection on the gnet
// listener: each iteration is one new connection with a full handshake (no
// session resumption) and one EHLO under TLS, so that the server has
// finished its side. BenchmarkPlainConnect is the same without TLS; the
// difference is the handshake. Client and server share the machine, so the
// rate is a lower bound of what the server alone could do.
//
//	go test ./engine/inbound/ -run '^$' -bench 'TLS|PlainConnect' -benchtime 2s
func BenchmarkSTARTTLSHandshake(b *testing.B) {
	benchConnections(b, false, true)
}

func BenchmarkImplicitTLS(b *testing.B) {
	benchConnections(b, true, true)
}

func BenchmarkPlainConnect(b *testing.B) {
	benchConnections(b, false, false)
}

func benchConnections(b *testing.B, implicit, useTLS bool) {
	srvTLS, cliTLS := testCert(b)
	cfg := testListener()
	if useTLS {
		cfg.TLSConfig = srvTLS
		cfg.ImplicitTLS = implicit
	}
	_, addr := startServer(b, cfg, nopAcceptor{}, Options{})
	var fails atomic.Int64
	b.ReportAllocs()
	// 8 clients per CPU keep the server busy while clients wait on replies.
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := oneConnection(addr, cliTLS, implicit, useTLS); err != nil {
				if fails.Add(1) == 1 {
					b.Error(err)
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
}

// oneConnection opens a connection, does the handshake (STARTTLS or
// implicit), sends EHLO under TLS, reads the reply and closes.
func oneConnection(addr string, cliTLS *tls.Config, implicit, useTLS bool) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	var conn net.Conn = raw
	r := bufio.NewReader(conn)
	readReply := func() (string, error) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return line, err
			}
			if len(line) < 4 || line[3] == ' ' {
				return line, nil
			}
		}
	}
	upgrade := func() error {
		tc := tls.Client(raw, cliTLS)
		if err := tc.Handshake(); err != nil {
			return err
		}
		conn = tc
		r = bufio.NewReader(tc)
		return nil
	}
	if useTLS && implicit {
		if err := upgrade(); err != nil {
			return err
		}
	}
	if l, err := readReply(); err != nil || l[:3] != "220" {
		return fmt.Errorf("greeting %q: %v", l, err)
	}
	if useTLS && !implicit {
		if _, err := conn.Write([]byte("EHLO bench.example.test\r\nSTARTTLS\r\n")); err != nil {
			return err
		}
		if l, err := readReply(); err != nil || l[:3] != "250" {
			return fmt.Errorf("EHLO %q: %v", l, err)
		}
		if l, err := readReply(); err != nil || l[:3] != "220" {
			return fmt.Errorf("STARTTLS %q: %v", l, err)
		}
		if err := upgrade(); err != nil {
			return err
		}
	}
	if _, err := conn.Write([]byte("EHLO bench.example.test\r\n")); err != nil {
		return err
	}
	if l, err := readReply(); err != nil || l[:3] != "250" {
		return fmt.Errorf("EHLO %q: %v", l, err)
	}
	_, _ = conn.Write([]byte("QUIT\r\n"))
	_, err = readReply()
	return err
}
