package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gannet/engine/config"
	"gannet/engine/httpapi"
	"gannet/engine/inbound"
	"gannet/queue"
	"gannet/queue/queuetest"
	"gannet/smtpwire"
)

// TestSpoolReply: the one classification of spool errors (RFC 3463 §3.4):
// a full queue or disk is 452 4.3.1 and HTTP 503, anything else 451 4.3.0
// and HTTP 500; never a positive reply.
func TestSpoolReply(t *testing.T) {
	for _, c := range []struct {
		name     string
		err      error
		code     int
		enhanced string
		full     bool
	}{
		{"max_queue_depth", errQueueFull, 452, "4.3.1", true},
		{"ENOSPC", fmt.Errorf("%w: write: %w", queue.ErrNoSpace, syscall.ENOSPC), 452, "4.3.1", true},
		{"free-space floor", fmt.Errorf("%w: less than 16777216 bytes free", queue.ErrNoSpace), 452, "4.3.1", true},
		{"EIO", fmt.Errorf("segment write: %w", syscall.EIO), 451, "4.3.0", false},
		{"closed", queue.ErrClosed, 451, "4.3.0", false},
		{"both", errors.Join(fmt.Errorf("fsync: %w", syscall.EIO), queue.ErrNoSpace), 452, "4.3.1", true},
	} {
		r := spoolReply(c.err)
		if r.Code != c.code || r.Enhanced != c.enhanced {
			t.Errorf("%s: reply %s, want %d %s", c.name, r, c.code, c.enhanced)
		}
		if got := errors.Is(injectError(c.err), httpapi.ErrQueueFull); got != c.full {
			t.Errorf("%s: HTTP queue full (503) = %v, want %v", c.name, got, c.full)
		}
		if !errors.Is(injectError(c.err), c.err) {
			t.Errorf("%s: injectError lost the cause", c.name)
		}
	}
}

// quietConfig is the default configuration with the spool and the log
// under dir, no listener, delivering to a closed port (nothing is
// delivered while a test runs).
func quietConfig(dir string) *config.Config {
	c := config.Default()
	c.SMTPListeners, c.HTTPListeners = nil, nil
	c.Spool.Path = filepath.Join(dir, "spool")
	c.Log.Path = filepath.Join(dir, "logs")
	c.Delivery.RelayTo = "127.0.0.1:1"
	return c
}

// faultEngine is an Engine of quietConfig over a spool whose segment files
// are on a FaultFS.
func faultEngine(t *testing.T) (*Engine, *queuetest.FaultFS, *syncBuffer) {
	t.Helper()
	c := quietConfig(t.TempDir())
	fs := queuetest.NewFaultFS(nil)
	logs := &syncBuffer{}
	e, err := New(c, Options{SpoolFS: fs, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	return e, fs, logs
}

// TestSpoolFaultsAnswered: over a spool whose disk fails, SMTP (Accept,
// then CheckMail for the next MAIL) and both HTTP inject endpoints answer
// from the same classification — a full disk 452 4.3.1 / 503, an I/O error
// on write or fsync 451 4.3.0 / 500 — with the cause in the log, and no
// message is acknowledged or queued.
func TestSpoolFaultsAnswered(t *testing.T) {
	for _, c := range []struct {
		name     string
		fault    func(*queuetest.FaultFS)
		code     int
		enhanced string
		status   int
		logged   string
	}{
		{"ENOSPC on write", func(fs *queuetest.FaultFS) { fs.FailWrites(syscall.ENOSPC, -1) }, 452, "4.3.1", http.StatusServiceUnavailable, "no space left on device"},
		{"EIO on write", func(fs *queuetest.FaultFS) { fs.FailWrites(syscall.EIO, -1) }, 451, "4.3.0", http.StatusInternalServerError, "input/output error"},
		{"EIO on fsync", func(fs *queuetest.FaultFS) { fs.FailSyncs(syscall.EIO, -1) }, 451, "4.3.0", http.StatusInternalServerError, "input/output error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, fs, logs := faultEngine(t)
			c.fault(fs)
			in := &inbound.Incoming{
				Listener: "relay-in", Hostname: "relay.test",
				Peer:     netip.MustParseAddrPort("127.0.0.1:40000"),
				Envelope: &smtpwire.Envelope{Helo: "client.test", From: smtpwire.Path{Addr: "a@src.test"}, Rcpts: []smtpwire.Path{{Addr: "b@dst.test"}}},
				Body:     []byte("From: a@src.test\r\nTo: b@dst.test\r\nSubject: fault\r\n\r\nhello\r\n"),
			}
			r := e.Accept(context.Background(), in)
			if r.Code != c.code || r.Enhanced != c.enhanced {
				t.Errorf("Accept: %s, want %d %s", r, c.code, c.enhanced)
			}
			// The spool reports the failed commit as unhealthy for a while:
			// the next MAIL gets the same answer.
			if r := e.CheckMail(in); r == nil || r.Code != c.code || r.Enhanced != c.enhanced {
				t.Errorf("CheckMail after the failure: %v, want %d %s", r, c.code, c.enhanced)
			}

			api := httpapi.New(httpapi.Options{Injector: e, TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
			for _, req := range []struct{ path, body string }{
				{"/v1/message", `{"from":"a@src.test","to":["b@dst.test"],"subject":"fault","text":"hello"}`},
				{"/api/inject/v1", `{"envelope_sender":"a@src.test","recipients":[{"email":"b@dst.test"},{"email":"c@dst.test"}],"content":"Subject: fault\n\nhello"}`},
			} {
				hr := httptest.NewRequest(http.MethodPost, req.path, strings.NewReader(req.body))
				hr.RemoteAddr = "127.0.0.1:40001"
				w := httptest.NewRecorder()
				api.Handler().ServeHTTP(w, hr)
				body, _ := io.ReadAll(w.Body)
				var ans struct{ Error string }
				if w.Code != c.status || json.Unmarshal(body, &ans) != nil || ans.Error == "" {
					t.Errorf("POST %s: %d %s, want %d with a JSON error", req.path, w.Code, body, c.status)
				}
				if strings.Contains(string(body), c.logged) {
					t.Errorf("POST %s: the cause reaches the client: %s", req.path, body)
				}
			}

			if n := e.spool.Stats().Live; n != 0 {
				t.Errorf("%d messages in the spool index, want none", n)
			}
			if n := e.delivery.Messages(); n != 0 {
				t.Errorf("%d messages queued, want none", n)
			}
			if !strings.Contains(logs.String(), c.logged) {
				t.Errorf("the cause %q is not logged:\n%s", c.logged, logs.String())
			}
		})
	}
}
