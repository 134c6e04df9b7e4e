package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"gannet/engine/inbound"
	"gannet/engine/logrec"
	"gannet/engine/suppress"
	"gannet/queue"
	"gannet/smtpwire"
)

// smtpIn is a message from a relay host (no AUTH, so no tenant at RCPT)
// to rcpts.
func smtpIn(rcpts ...string) *inbound.Incoming {
	env := &smtpwire.Envelope{Helo: "client.test", ESMTP: true, From: smtpwire.Path{Addr: "a@src.test"}}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, smtpwire.Path{Addr: r})
	}
	return &inbound.Incoming{Listener: "relay-in", Hostname: "relay.test", Peer: netip.MustParseAddrPort("127.0.0.1:40000"),
		Envelope: env, Body: []byte("Subject: s\r\n\r\nhello\r\n")}
}

// TestSuppressedForDecidedTenant: the tenant a policy gives a message
// (here "scripted") is known only after DATA; its suppressed recipient is
// accepted at RCPT (the session has no tenant), then skipped in the store
// path with a drop — the others are spooled; a message with no other
// recipient is answered 250 and spooled not at all.
func TestSuppressedForDecidedTenant(t *testing.T) {
	e := storeEngine(t, scriptedPolicy{})
	if err := e.suppress.Add("scripted", "Gone@dst.test", "test", suppress.SourceAdmin); err != nil {
		t.Fatal(err)
	}
	in := smtpIn("gone@dst.test", "kept@dst.test")
	if r := e.CheckRcpt(in, "gone@dst.test"); r != nil {
		t.Errorf("refused at RCPT without a tenant: %s", r)
	}
	r := e.Accept(context.Background(), in)
	if r.Code != 250 {
		t.Fatalf("Accept: %s", r)
	}
	var rcpts []string
	e.spool.Scan(func(m *queue.Message) error {
		for _, rc := range m.Recipients {
			rcpts = append(rcpts, rc.Addr)
		}
		return nil
	})
	if strings.Join(rcpts, " ") != "kept@dst.test" {
		t.Errorf("spooled recipients %v, want kept@ only", rcpts)
	}
	r = e.Accept(context.Background(), smtpIn("gone@dst.test"))
	if r.Code != 250 || !strings.HasPrefix(r.Lines[0], "OK id=") {
		t.Errorf("all-suppressed message: %s", r)
	}
	if n := e.delivery.Messages(); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
	if v := sample(scrapeText(e.metrics), `gannet_suppressed_total{mode="drop"}`); v != "2" {
		t.Errorf(`gannet_suppressed_total{mode="drop"} = %q, want 2`, v)
	}
}

// TestCheckRcptModes: a global entry is refused at RCPT with 550 5.7.1 in
// mode refuse, never in modes drop and off; a tenant's entry only for a
// session of that tenant.
func TestCheckRcptModes(t *testing.T) {
	e := storeEngine(t, scriptedPolicy{})
	e.suppress.Add("", "all@dst.test", "", suppress.SourceAdmin)
	e.suppress.Add("acme", "acme@dst.test", "", suppress.SourceAdmin)
	in := smtpIn()
	if r := e.CheckRcpt(in, "ALL@dst.test"); r == nil || r.Code != 550 || r.Enhanced != "5.7.1" {
		t.Errorf("global entry: %v", r)
	}
	if r := e.CheckRcpt(in, "acme@dst.test"); r != nil {
		t.Errorf("acme's entry refused for a session without tenant: %v", r)
	}
	in.Tenant = "acme"
	if r := e.CheckRcpt(in, "acme@dst.test"); r == nil {
		t.Error("acme's entry not refused for acme's session")
	}
	in.Tenant = "other"
	if r := e.CheckRcpt(in, "acme@dst.test"); r != nil {
		t.Errorf("acme's entry refused for another tenant: %v", r)
	}
	for _, mode := range []string{"drop", "off"} {
		lp := *e.live.Load()
		c := *lp.cfg
		c.Suppression.Mode = mode
		lp.cfg = &c
		e.live.Store(&lp)
		if r := e.CheckRcpt(in, "all@dst.test"); r != nil {
			t.Errorf("mode %s: refused at RCPT: %v", mode, r)
		}
	}
}

// TestEraseDeadLetters: an erasure purges the dead letters from or to the
// address, whole, and leaves the others; it suppresses the address
// globally unless told not to; the answer names its SHA-256.
func TestEraseDeadLetters(t *testing.T) {
	e := storeEngine(t, scriptedPolicy{})
	now := time.Now()
	for _, m := range []*queue.Message{
		{ID: "from", From: "Victim@x.test", Recipients: []queue.Recipient{{Addr: "a@y.test"}}},
		{ID: "to", From: "s@x.test", Recipients: []queue.Recipient{{Addr: "b@y.test"}, {Addr: "victim@X.TEST"}}},
		{ID: "other", From: "s@x.test", Recipients: []queue.Recipient{{Addr: "c@y.test"}}},
	} {
		m.Created = now
		if err := e.spool.Append(m, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := e.spool.MoveToDead(m, now); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.Erase("victim@x.test", false, "test")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("victim@x.test"))
	if res.DeadLetters != 2 || res.Suppressed || res.AddressSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("answer %+v", res)
	}
	var left []string
	e.spool.ScanDead(func(m *queue.Message) error { left = append(left, m.ID); return nil })
	if strings.Join(left, " ") != "other" {
		t.Errorf("dead letters left: %v", left)
	}
	if e.suppress.Suppressed("any", "victim@x.test") {
		t.Error("suppressed with suppress false")
	}
	if _, err := e.Erase("victim@x.test", true, "test"); err != nil || !e.suppress.Suppressed("any", "victim@x.test") {
		t.Errorf("not suppressed globally: %v", err)
	}
	// Mail to it now is refused, and the record of that names its hash.
	if r := e.CheckRcpt(smtpIn(), "Victim@x.test"); r == nil || r.Code != 550 {
		t.Errorf("erased address at RCPT: %v", r)
	}
	e.records.Flush()
	var suppressed []string
	logrec.ReadDir(e.cfg.Log.Path, func(r *logrec.Record) error {
		if r.Type == logrec.Suppressed {
			suppressed = append(suppressed, r.Recipient)
		}
		if strings.Contains(strings.ToLower(r.Recipient+r.Sender+r.Response.Content), "victim@") {
			t.Errorf("a %s record names the erased address: %+v", r.Type, r)
		}
		return nil
	})
	if len(suppressed) != 1 || suppressed[0] != "sha256:"+hex.EncodeToString(sum[:])+"@x.test" {
		t.Errorf("Suppressed records %v", suppressed)
	}
	if _, err := e.Erase("no-at-sign", true, "test"); err == nil {
		t.Error("a non-address was erased")
	}
}

// BenchmarkCheckRcpt is the RCPT TO hook on the event loop, mode refuse,
// with an empty list and with 100,000 entries: a recipient not listed (the
// usual case) and one listed (which also writes its Suppressed record).
func BenchmarkCheckRcpt(b *testing.B) {
	e, err := New(quietConfig(b.TempDir()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Stop(context.Background()) })
	in := smtpIn()
	in.Tenant = "acme"
	b.Run("empty", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e.CheckRcpt(in, "someone@example.test") != nil {
				b.Fatal("refused")
			}
		}
	})
	f, err := os.CreateTemp(b.TempDir(), "list")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100000 {
		fmt.Fprintf(f, "user%d@example.test,acme\n", i)
	}
	f.Seek(0, 0)
	if _, err := e.suppress.Import(f, "", suppress.SourceImport); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.Run("100k-miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e.CheckRcpt(in, "someone@example.test") != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("100k-hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e.CheckRcpt(in, "user777@example.test") == nil {
				b.Fatal("not refused")
			}
		}
	})
}
