package delivery

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// dsnCapture collects the DSNs a Loop sends, by the option they went to.
type dsnCapture struct {
	mu      sync.Mutex
	bounces [][]byte // SendBounce
	dsns    [][]byte // SendDSN
}

func (c *dsnCapture) install(o *Options) {
	o.ReportingMTA = "relay.gannet.test"
	o.SendBounce = func(to string, body []byte) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.bounces = append(c.bounces, body)
		return nil
	}
	o.SendDSN = func(to string, body []byte) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if to != "sender@src.test" {
			panic("DSN to " + to)
		}
		c.dsns = append(c.dsns, body)
		return nil
	}
}

func (c *dsnCapture) counts() (bounces, dsns int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bounces), len(c.dsns)
}

// parsedDSN is a DSN read with net/mail and mime/multipart.
type parsedDSN struct {
	header  mail.Header
	types   []string // content types of the parts, in order
	fields  []map[string]string
	related string // the third part
}

// parseDSN checks the RFC 3464 structure of a DSN: multipart/report with
// report-type=delivery-status, and reads its message/delivery-status part
// as groups of fields (per-message first, then one per recipient, §2.1).
func parseDSN(t *testing.T, body []byte) *parsedDSN {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	d := &parsedDSN{header: msg.Header}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		ct := strings.Split(part.Header.Get("Content-Type"), ";")[0]
		d.types = append(d.types, ct)
		switch len(d.types) {
		case 2:
			for _, group := range strings.Split(strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n")), "\n\n") {
				f := map[string]string{}
				for _, line := range strings.Split(group, "\n") {
					k, v, ok := strings.Cut(line, ":")
					if !ok {
						t.Fatalf("delivery-status line %q", line)
					}
					f[k] = strings.TrimSpace(v)
				}
				d.fields = append(d.fields, f)
			}
		case 3:
			d.related = string(b)
		}
	}
	if len(d.types) != 3 || d.types[0] != "text/plain" || d.types[1] != "message/delivery-status" {
		t.Fatalf("parts %v", d.types)
	}
	return d
}

// recipient returns the per-recipient fields of addr; nil when absent.
func (d *parsedDSN) recipient(addr string) map[string]string {
	for _, f := range d.fields[1:] {
		if f["Final-Recipient"] == "rfc822; "+addr {
			return f
		}
	}
	return nil
}

// TestDSNRequests: the DSN parameters go to the transport; with a server
// that does not offer DSN, one DSN reports NOTIFY=SUCCESS as relayed and
// NOTIFY=FAILURE (with ORCPT) as failed, returns the whole message under
// RET=FULL and echoes ENVID; NOTIFY=NEVER and a NOTIFY without FAILURE
// silence the bounce send_bounces would send.
func TestDSNRequests(t *testing.T) {
	var c dsnCapture
	h := newHarness(t, c.install)
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
	var mu sync.Mutex
	var seen *outbound.Envelope
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		e := *env
		seen = &e
		mu.Unlock()
		o := outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
		for i, r := range env.Rcpts {
			if !strings.HasPrefix(r, "ok") {
				o.Results[i] = outbound.Result{Rcpt: r, Status: outbound.Bounced, Reply: reply(550, "5.1.1", "no such user")}
			}
		}
		o.Host = "mx.x.test"
		return o
	}
	h.loop.Start()
	m := newMessage("m1", h.clock.Now(), "ok@x.test", "never@x.test", "fail@x.test", "succonly@x.test")
	m.DSNRet, m.EnvID = queue.RetFull, "env 1"
	m.Recipients[0].Notify = queue.NotifySuccess
	m.Recipients[1].Notify = queue.NotifyNever
	m.Recipients[2].Notify, m.Recipients[2].ORcpt = queue.NotifyFailure|queue.NotifyDelay, "rfc822;Orig@x.test"
	m.Recipients[3].Notify = queue.NotifySuccess
	body := "Subject: original\r\nMessage-ID: <orig@src.test>\r\n\r\nthe body\r\n"
	h.enqueue(t, m, body)
	h.rec.waitFor(t, 4)
	waitUntil(t, func() bool { _, n := c.counts(); return n > 0 })
	time.Sleep(20 * time.Millisecond)
	if b, n := c.counts(); b != 0 || n != 1 {
		t.Fatalf("%d bounces and %d DSNs, want 0 and 1", b, n)
	}

	mu.Lock()
	if seen.Ret != smtpwire.RetFull || seen.EnvID != "env 1" || len(seen.RcptDSN) != 4 ||
		seen.RcptDSN[2] != (outbound.RcptDSN{Notify: smtpwire.NotifyFailure | smtpwire.NotifyDelay, ORcpt: "rfc822;Orig@x.test"}) ||
		seen.RcptDSN[1].Notify != smtpwire.NotifyNever {
		t.Errorf("envelope DSN parameters: %+v", seen)
	}
	mu.Unlock()

	d := parseDSN(t, c.dsns[0])
	if d.types[2] != "message/rfc822" || !strings.Contains(d.related, "the body") {
		t.Errorf("RET=FULL: third part %s:\n%s", d.types[2], d.related)
	}
	if d.fields[0]["Original-Envelope-Id"] != "env+201" || d.fields[0]["Reporting-MTA"] != "dns; relay.gannet.test" {
		t.Errorf("per-message fields %v", d.fields[0])
	}
	if len(d.fields) != 3 {
		t.Fatalf("recipients reported: %v", d.fields[1:])
	}
	if f := d.recipient("ok@x.test"); f == nil || f["Action"] != "relayed" || f["Status"] != "2.0.0" || f["Remote-MTA"] != "dns; mx.x.test" {
		t.Errorf("ok@x.test: %v", f)
	}
	if f := d.recipient("succonly@x.test"); f != nil {
		t.Errorf("a NOTIFY without FAILURE got a failure DSN: %v", f)
	}
	if f := d.recipient("fail@x.test"); f == nil || f["Action"] != "failed" || f["Status"] != "5.1.1" || f["Original-Recipient"] != "rfc822;Orig@x.test" {
		t.Errorf("fail@x.test: %v", f)
	}
	if d.recipient("never@x.test") != nil {
		t.Error("NOTIFY=NEVER reported")
	}
}

// TestDSNHeadersOnly: RET=HDRS (and no RET) returns only the header section
// of a failed message; a recipient without NOTIFY bounces as before
// (SendBounce), a NOTIFY=NEVER one sends nothing.
func TestDSNHeadersOnly(t *testing.T) {
	var c dsnCapture
	h := newHarness(t, c.install)
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		return outcomeAll(env, outbound.Bounced, reply(550, "5.7.1", "refused"))
	}
	h.loop.Start()
	m := newMessage("h1", h.clock.Now(), "a@y.test")
	m.DSNRet = queue.RetHeaders
	m.Recipients[0].Notify = queue.NotifyFailure
	h.enqueue(t, m, "Subject: s\r\n\r\nsecret body\r\n")
	plain := newMessage("h2", h.clock.Now(), "b@y.test")
	h.enqueue(t, plain, "Subject: s\r\n\r\nsecret body\r\n")
	never := newMessage("h3", h.clock.Now(), "c@y.test")
	never.Recipients[0].Notify = queue.NotifyNever
	h.enqueue(t, never, "Subject: s\r\n\r\nsecret body\r\n")
	h.rec.waitFor(t, 3)
	waitUntil(t, func() bool { b, n := c.counts(); return b+n >= 2 })
	time.Sleep(20 * time.Millisecond)
	if b, n := c.counts(); b != 1 || n != 1 {
		t.Fatalf("%d bounces and %d DSNs, want 1 and 1", b, n)
	}
	for _, body := range [][]byte{c.dsns[0], c.bounces[0]} {
		d := parseDSN(t, body)
		if d.types[2] != "text/rfc822-headers" || strings.Contains(d.related, "secret") || !strings.Contains(d.related, "Subject: s") {
			t.Errorf("third part %s:\n%s", d.types[2], d.related)
		}
	}
}

// TestDSNNotOwedAfterDSNHop: a server that offers DSN got NOTIFY, so a
// delivery to it owes no "relayed" DSN.
func TestDSNNotOwedAfterDSNHop(t *testing.T) {
	var c dsnCapture
	h := newHarness(t, c.install)
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		o := outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
		o.DSN = true
		return o
	}
	h.loop.Start()
	m := newMessage("s1", h.clock.Now(), "a@y.test")
	m.Recipients[0].Notify = queue.NotifySuccess
	h.enqueue(t, m, "Subject: s\r\n\r\nbody\r\n")
	h.rec.waitFor(t, 1)
	time.Sleep(50 * time.Millisecond)
	if b, n := c.counts(); b+n != 0 {
		t.Fatalf("%d bounces and %d DSNs, want none", b, n)
	}
}

// TestDSNDelayed: a recipient with NOTIFY=DELAY still deferred
// delay_warning_after after arrival gets one "delayed" DSN, marked in the
// spool so that it gets no second; one without DELAY gets none.
func TestDSNDelayed(t *testing.T) {
	var c dsnCapture
	h := newHarness(t, func(o *Options) {
		c.install(o)
		o.DelayWarningAfter = func() time.Duration { return 4 * time.Hour }
	})
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		return outcomeAll(env, outbound.Transient, reply(451, "4.7.1", "try later"))
	}
	h.loop.Start()
	m := newMessage("d1", h.clock.Now().Add(-5*time.Hour), "a@y.test", "b@y.test")
	m.Recipients[0].Notify = queue.NotifyDelay | queue.NotifyFailure
	m.Recipients[1].Notify = queue.NotifyFailure
	h.enqueue(t, m, "Subject: s\r\n\r\nbody\r\n")
	h.rec.waitFor(t, 2)
	waitUntil(t, func() bool { _, n := c.counts(); return n > 0 })
	d := parseDSN(t, c.dsns[0])
	if f := d.recipient("a@y.test"); f == nil || f["Action"] != "delayed" || f["Status"] != "4.7.1" || f["Will-Retry-Until"] == "" {
		t.Errorf("a@y.test: %v", f)
	}
	if d.recipient("b@y.test") != nil || !strings.HasPrefix(d.header.Get("Subject"), "Delayed") {
		t.Errorf("report %v, subject %q", d.fields, d.header.Get("Subject"))
	}
	h.store.mu.Lock()
	saved := h.store.saved["d1"]
	h.store.mu.Unlock()
	if !saved.Recipients[0].DelayWarned || saved.Recipients[1].DelayWarned {
		t.Errorf("saved recipients %+v", saved.Recipients)
	}
	// The next attempt fails again: no second delay DSN.
	h.advance(t, time.Hour)
	h.rec.waitFor(t, 4)
	time.Sleep(20 * time.Millisecond)
	if _, n := c.counts(); n != 1 {
		t.Fatalf("%d DSNs after a second deferral, want 1", n)
	}
}
