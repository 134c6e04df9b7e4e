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
	"gannet/resolver"
)

// TestBounceMessageToSender: with SendBounce set, a recipient refused with
// 550 gets an RFC 3464 report to the envelope sender: multipart/report
// with a human part, message/delivery-status fields and the original
// headers. The delivered recipient is not in it, and a message from the
// null sender never causes one.
func TestBounceMessageToSender(t *testing.T) {
	var mu sync.Mutex
	type sent struct {
		to   string
		body []byte
	}
	var got []sent
	h := newHarness(t, func(o *Options) {
		o.ReportingMTA = "relay.gannet.test"
		o.SendBounce = func(to string, body []byte) error {
			mu.Lock()
			got = append(got, sent{to, body})
			mu.Unlock()
			return nil
		}
	})
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		o := outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
		for i, r := range env.Rcpts {
			if strings.HasPrefix(r, "bad") {
				o.Results[i] = outbound.Result{Rcpt: r, Status: outbound.Bounced, Reply: reply(550, "5.1.1", "no such user")}
			}
		}
		o.Host = "mx.x.test"
		return o
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "good@x.test", "bad@x.test"), "Subject: original\r\nMessage-ID: <orig@src.test>\r\n\r\nbody\r\n")
	null := newMessage("m2", h.clock.Now(), "bad2@x.test")
	null.From = ""
	h.enqueue(t, null, "Subject: a bounce\r\n\r\nbody\r\n")
	h.rec.waitFor(t, 3)
	// The bounce message is spooled after the records are written.
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 })
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].to != "sender@src.test" {
		t.Fatalf("bounce messages %d (to %v), want one to sender@src.test", len(got), got)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got[0].body))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("Auto-Submitted %q", msg.Header.Get("Auto-Submitted"))
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	var status, headers string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		ct := part.Header.Get("Content-Type")
		types = append(types, strings.Split(ct, ";")[0])
		switch {
		case strings.HasPrefix(ct, "message/delivery-status"):
			status = string(b)
		case strings.HasPrefix(ct, "text/rfc822-headers"):
			headers = string(b)
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Errorf("parts %v", types)
	}
	for _, want := range []string{"Reporting-MTA: dns; relay.gannet.test", "Final-Recipient: rfc822; bad@x.test",
		"Action: failed", "Status: 5.1.1", "Remote-MTA: dns; mx.x.test", "Diagnostic-Code: smtp; 550 5.1.1 no such user"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "good@x.test") {
		t.Error("the delivered recipient is in the report")
	}
	if !strings.Contains(headers, "Message-ID: <orig@src.test>") || strings.Contains(headers, "body") {
		t.Errorf("original headers part:\n%s", headers)
	}
}
