package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gannet/engine/bounce"
	"gannet/engine/config"
	"gannet/engine/delivery"
	"gannet/engine/logrec"
	"gannet/engine/metrics"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// scrapeText returns the exposition of m.
func scrapeText(m *metrics.Metrics) string {
	var b bytes.Buffer
	m.WritePrometheus(&b)
	return b.String()
}

// sample returns the value of one exact series in an exposition, or "".
func sample(text, series string) string {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestObserverCountsRecords(t *testing.T) {
	m := metrics.New()
	o := newObserver(m, bounce.Default())
	o.enqueued(&queue.Message{ID: "1", Tenant: "acme", Campaign: "spring", Recipients: []queue.Recipient{
		{Addr: "a@D1.test"}, {Addr: "b@d1.test"}, {Addr: "c@d2.test"}, {Addr: "done@d2.test", State: queue.Delivered},
	}})
	base := logrec.Record{ID: "1", Tenant: "acme", Campaign: "spring", Site: "mx.d1.test"}
	rec := func(typ logrec.Type, rcpt string, code int, enh, text, class string) *logrec.Record {
		r := base
		r.Type, r.Recipient, r.Response, r.BounceClassification = typ, rcpt, logrec.Response{Code: code, EnhancedCode: enh, Content: text}, class
		o.record(&r)
		return &r
	}
	for _, a := range []string{"a@D1.test", "b@d1.test", "c@d2.test"} {
		rec(logrec.Reception, a, 250, "2.0.0", "OK", "")
	}
	tf := rec(logrec.TransientFailure, "a@D1.test", 452, "4.2.2", "mailbox full", "")
	if tf.BounceClassification != "QuotaIssues" {
		t.Errorf("TransientFailure classified %q, want QuotaIssues", tf.BounceClassification)
	}
	rec(logrec.Delivery, "a@D1.test", 250, "2.0.0", "OK", "")
	rec(logrec.Bounce, "b@d1.test", 550, "5.1.1", "no such user", "InvalidRecipient")
	ex := rec(logrec.Expiration, "c@d2.test", 451, "4.4.1", "timeout", "")
	if ex.BounceClassification != "MessageExpired" {
		t.Errorf("Expiration classified %q", ex.BounceClassification)
	}
	m.SetDestinations(func() metrics.DestinationState { return o.destinations(nil) })

	text := scrapeText(m)
	for series, want := range map[string]string{
		`gannet_domain_messages_received_total{domain="d1.test"}`:          "2",
		`gannet_domain_messages_delivered_total{domain="d1.test"}`:         "1",
		`gannet_domain_messages_bounced_total{domain="d1.test"}`:           "1",
		`gannet_domain_messages_expired_total{domain="d2.test"}`:           "1",
		`gannet_site_messages_transient_failures_total{site="mx.d1.test"}`: "1",
		`gannet_tenant_messages_received_total{tenant="acme"}`:             "3",
		`gannet_campaign_messages_delivered_total{campaign="spring"}`:      "1",
		`gannet_bounces_total{class="InvalidRecipient"}`:                   "1",
		`gannet_bounces_total{class="MessageExpired"}`:                     "1",
		`gannet_transient_failures_by_class_total{class="QuotaIssues"}`:    "1",
	} {
		if got := sample(text, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	// Every enqueued recipient reached a final state: no queue left.
	if strings.Contains(text, "gannet_domain_queue_depth{") {
		t.Errorf("domain queue depth after every recipient ended:\n%s", text)
	}
}

// blockingTransport holds each Deliver until release is closed.
type blockingTransport struct {
	started chan struct{}
	release chan struct{}
}

func (b blockingTransport) Deliver(ctx context.Context, r *resolver.Route, env *outbound.Envelope) outbound.Outcome {
	b.started <- struct{}{}
	<-b.release
	return outbound.Outcome{}
}
func (b blockingTransport) Close() error { return nil }

func TestObserverTransactionsInProgress(t *testing.T) {
	m := metrics.New()
	o := newObserver(m, bounce.Default())
	o.enqueued(&queue.Message{Recipients: []queue.Recipient{{Addr: "x@d1.test"}, {Addr: "y@d1.test"}}})
	bt := blockingTransport{started: make(chan struct{}), release: make(chan struct{})}
	tr := o.transport(bt)
	done := make(chan struct{})
	for range 2 {
		go func() {
			tr.Deliver(context.Background(), &resolver.Route{Domain: "d1.test", Site: resolver.MXSite([]string{"mx.d1.test"})}, &outbound.Envelope{})
			done <- struct{}{}
		}()
	}
	<-bt.started
	<-bt.started
	st := o.destinations([]delivery.SiteStatus{
		{Site: "mx.d1.test", Source: "a", EffectiveRate: 2, Ready: 3, InFlight: 2},
		{Site: "mx.d1.test", Source: "b", EffectiveRate: 1.5},
	})
	if len(st.Sites) != 1 || st.Sites[0].Connections != 2 || st.Sites[0].QueueDepth != 5 {
		t.Errorf("sites = %+v, want mx.d1.test with 2 transactions and 5 queued", st.Sites)
	}
	if len(st.Domains) != 1 || st.Domains[0].Connections != 2 || st.Domains[0].QueueDepth != 2 ||
		!st.Domains[0].HasRate || st.Domains[0].Rate != 3.5 {
		t.Errorf("domains = %+v, want d1.test: 2 transactions, 2 recipients, rate 3.5", st.Domains)
	}
	close(bt.release)
	<-done
	<-done
	st = o.destinations(nil)
	if len(st.Sites) != 0 || len(st.Domains) != 1 || st.Domains[0].Connections != 0 {
		t.Errorf("after the transactions: %+v", st)
	}
}

func BenchmarkObserverRecord(b *testing.B) {
	m := metrics.New()
	o := newObserver(m, bounce.Default())
	r := logrec.Record{Type: logrec.TransientFailure, Recipient: "user@example.test", Site: "mx.example.test", Tenant: "acme",
		Response: logrec.Response{Code: 451, EnhancedCode: "4.7.1", Content: "try again later"}}
	b.ReportAllocs()
	for b.Loop() {
		rr := r
		o.record(&rr)
	}
}

// TestEngineLoadsBounceRulesFile: [bounce] rules_file rules come before
// the built-in ones, for bounces and for transient failures; a bad file
// stops the start.
func TestEngineLoadsBounceRulesFile(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.toml")
	os.WriteFile(rules, []byte("[[rule]]\nclass = \"SpamBlock\"\npatterns = ['no such user here']\n"), 0o644)
	c := config.Default()
	c.Spool.Path, c.Log.Path = filepath.Join(dir, "spool"), filepath.Join(dir, "logs")
	c.SMTPListeners, c.HTTPListeners = nil, nil
	c.Delivery.RelayTo = "127.0.0.1:9" // no resolver
	c.Bounce.RulesFile = rules
	e, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background())
	rep := smtpwire.Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"no such user here"}}
	if got := e.classify(rep); got != "SpamBlock" {
		t.Errorf("bounce classified %s, want the operator's SpamBlock", got)
	}
	tf := logrec.Record{Type: logrec.TransientFailure, Response: logrec.Response{Code: 450, EnhancedCode: "4.1.1", Content: "no such user here"}}
	e.obs.record(&tf)
	if tf.BounceClassification != "SpamBlock" {
		t.Errorf("transient failure classified %s, want SpamBlock", tf.BounceClassification)
	}

	os.WriteFile(rules, []byte("[[rule]]\nclass = \"Nonsense\"\npatterns = ['x']\n"), 0o644)
	c.Spool.Path = filepath.Join(dir, "spool2")
	if _, err := New(c, Options{}); err == nil || !strings.Contains(err.Error(), "rules_file") {
		t.Errorf("New with a bad rules file: %v", err)
	}
}
