package inbound

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/trace"
	"gannet/smtpwire"
)

// nopAcceptor takes every message at once.
type nopAcceptor struct{}

var benchOK = smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=bench"}}

func (nopAcceptor) Accept(context.Context, *Incoming) smtpwire.Reply { return benchOK }
func (nopAcceptor) CheckMail(*Incoming) *smtpwire.Reply              { return nil }

// BenchmarkInboundMessages measures reception: 16 connections pipeline 2 KB
// messages (the next MAIL/RCPT/DATA rides in the same write as the previous
// body's final dot) into an Acceptor that returns at once. Client and server
// share the machine, so msgs/s is a lower bound of the server's capacity.
func BenchmarkInboundMessages(b *testing.B) {
	const conns = 16
	cfg := testListener()
	// As the engine runs it: refusals reported, traces possible (nobody
	// traces: one atomic load per batch).
	_, addr := startServer(b, cfg, nopAcceptor{}, Options{OnRejection: func(*Rejection) {}, Trace: trace.NewHub(nil)})
	body := strings.Repeat(strings.Repeat("x", 62)+"\r\n", 32) // 2048 bytes
	envelope := []byte("MAIL FROM:<bench@example.test>\r\nRCPT TO:<sink@example.test>\r\nDATA\r\n")
	next := []byte(body + ".\r\n" + string(envelope))
	last := []byte(body + ".\r\n")

	clients := make([]*benchClient, conns)
	for i := range clients {
		clients[i] = dialBench(b, addr)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		if n == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(n, envelope, next, last); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

type benchClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialBench(b *testing.B, addr string) *benchClient {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchClient{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
	if _, err := conn.Write([]byte("EHLO bench.example.test\r\n")); err != nil {
		b.Fatal(err)
	}
	if err := c.expect(2, '2'); err != nil { // greeting, EHLO
		b.Fatal(err)
	}
	return c
}

// expect reads n replies and checks that each starts with class.
func (c *benchClient) expect(n int, class byte) error {
	for n > 0 {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) < 4 || line[0] != class && !(class == '2' && line[0] == '3') {
			return fmt.Errorf("unexpected reply %q", line)
		}
		if line[3] == ' ' {
			n--
		}
	}
	return nil
}

// run sends n messages: envelope, then each body with the next envelope.
func (c *benchClient) run(n int, envelope, next, last []byte) error {
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := c.conn.Write(envelope); err != nil {
		return err
	}
	if err := c.expect(3, '2'); err != nil { // 250 250 354
		return err
	}
	for i := 0; i < n; i++ {
		msg, replies := next, 4 // 250 for the message, then 250 250 354
		if i == n-1 {
			msg, replies = last, 1
		}
		if _, err := c.conn.Write(msg); err != nil {
			return err
		}
		if err := c.expect(replies, '2'); err != nil {
			return err
		}
	}
	return nil
}
