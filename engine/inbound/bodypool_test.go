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

// A session's first body buffer is as large as the bodies received lately
// (so that a 100 KB message sent alone on its connection is not copied
// through doubling buffers), never past 256 KiB whatever came, and small
// again once small mail is what comes.
func TestBodyBufferFollowsRecentSizes(t *testing.T) {
	var s Server
	if got := cap(s.bodyBuffer(4096)); got != 4096 {
		t.Fatalf("before any message: a %d-byte buffer, want 4096", got)
	}
	for range 30 {
		s.noteBody(100 << 10)
	}
	if got := cap(s.bodyBuffer(4096)); got < 100<<10 {
		t.Errorf("after 100 KB messages: a %d-byte buffer, want room for 100 KB", got)
	}
	for range 30 {
		s.noteBody(50 << 20)
	}
	if got := cap(s.bodyBuffer(4096)); got > 256<<10 {
		t.Errorf("after 50 MB messages: a %d-byte buffer, want at most 256 KiB", got)
	}
	for range 100 {
		s.noteBody(2000)
	}
	if got := cap(s.bodyBuffer(4096)); got != 4096 {
		t.Errorf("after 2 KB messages: a %d-byte buffer, want 4096", got)
	}
}
