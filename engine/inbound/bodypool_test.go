package inbound

import (
	"bytes"
	"context"
	"fmt"
	"net/smtp"
	"strings"
	"sync"
	"testing"

	"gannet/smtpwire"
)

// copyingAcceptor keeps a copy of every body and gives the buffer back
// (BodyReleaser), as the engine does.
type copyingAcceptor struct {
	memAcceptor
}

func (a *copyingAcceptor) ReleasesBody() bool { return true }

func (a *copyingAcceptor) Accept(ctx context.Context, in *Incoming) smtpwire.Reply {
	cp := *in
	cp.Body = bytes.Clone(in.Body)
	return a.memAcceptor.Accept(ctx, &cp)
}

// With body buffers reused between messages and connections, every message
// still arrives exactly as sent: sizes that cross the pool's classes, from
// several connections at once, several messages per connection.
func TestReusedBodyBuffersKeepMessagesIntact(t *testing.T) {
	acc := &copyingAcceptor{}
	_, addr := startServer(t, testListener(), acc, Options{})
	sizes := []int{10, 5000, 300, 70 << 10, 2000, 9000, 150 << 10, 40}
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := smtp.Dial(addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i, n := range sizes {
				tag := fmt.Sprintf("c%d-m%d", c, i)
				line := strings.Repeat(string(rune('a'+(c+i)%26)), 70) + "\r\n"
				body := "Subject: " + tag + "\r\n\r\n" + strings.Repeat(line, n/len(line)+1)
				mu.Lock()
				want[tag] = body
				mu.Unlock()
				if err := cl.Mail("s@example.test"); err != nil {
					t.Error(err)
					return
				}
				if err := cl.Rcpt("r@example.test"); err != nil {
					t.Error(err)
					return
				}
				w, err := cl.Data()
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := w.Write([]byte(body)); err != nil {
					t.Error(err)
					return
				}
				if err := w.Close(); err != nil {
					t.Error(err)
					return
				}
			}
			cl.Quit()
		}()
	}
	wg.Wait()
	msgs := acc.messages()
	if len(msgs) != 4*len(sizes) {
		t.Fatalf("got %d messages, want %d", len(msgs), 4*len(sizes))
	}
	for _, m := range msgs {
		subj, _, _ := strings.Cut(strings.TrimPrefix(string(m.Body), "Subject: "), "\r\n")
		if string(m.Body) != want[subj] {
			t.Fatalf("message %s: %d bytes differ from the %d sent", subj, len(m.Body), len(want[subj]))
		}
	}
}
