package engine

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"gannet/engine/delivery"
	"gannet/engine/outbound"
	"gannet/engine/policy/lua"
	"gannet/engine/shaping"
	"gannet/queue"
	"gannet/resolver"
)

// TestShapingSuspensionsListed: a site a shaping rule suspended is listed
// as a suspension of origin "rule" with its expiry, until it ends.
func TestShapingSuspensionsListed(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e := &Engine{now: clock, shaper: shaping.New(shaping.Config{Now: clock})}
	if got := e.shapingSuspensions(); len(got) != 0 {
		t.Fatalf("nothing suspended, listed %+v", got)
	}
	e.shaper.SuspendSite(resolver.MXSite([]string{"mx.x.test"}), now.Add(10*time.Minute))
	got := e.shapingSuspensions()
	if len(got) != 1 || got[0].Origin != "rule" || got[0].Site != "mx.x.test" || got[0].ID != "rule:mx.x.test" ||
		got[0].Expires == nil || !got[0].Expires.Equal(now.Add(10*time.Minute)) || got[0].Duration != "10m0s" {
		t.Fatalf("listed %+v", got)
	}
	now = now.Add(11 * time.Minute)
	if got := e.shapingSuspensions(); len(got) != 0 {
		t.Errorf("an ended suspension is listed: %+v", got)
	}
	if got := (&Engine{}).shapingSuspensions(); got != nil {
		t.Errorf("no shaper: %+v", got)
	}
}

// nopTransport defers nothing and delivers nothing: the script host test
// queues no mail.
type nopTransport struct{}

func (nopTransport) Deliver(context.Context, *resolver.Route, *outbound.Envelope) outbound.Outcome {
	return outbound.Outcome{}
}
func (nopTransport) Close() error { return nil }

// TestScriptRulesHavePolicyOrigin: a policy script's kumo.suspend and
// kumo.bounce make rules of origin "policy", stored in the spool and
// restored by the next run.
func TestScriptRulesHavePolicyOrigin(t *testing.T) {
	dir := t.TempDir()
	sp, err := queue.Open(queue.Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	e := &Engine{now: time.Now, ids: queue.NewIDGenerator(time.Now), log: slog.New(slog.DiscardHandler)}
	e.delivery = delivery.New(delivery.Options{Store: sp, Rules: sp, Transport: nopTransport{}, RelayTo: "127.0.0.1:1"})
	defer e.delivery.Stop(context.Background())
	h := scriptHost{e: e}
	h.Suspend(lua.Selector{Domain: "x.test"}, "421 storm", 0)
	h.Bounce(lua.Selector{Campaign: "junk"}, "bad list", time.Hour)
	if s := e.delivery.Suspensions(); len(s) != 1 || s[0].Origin != delivery.OriginPolicy || s[0].Expires.IsZero() {
		t.Errorf("suspensions %+v", s)
	}
	if b := e.delivery.Bounces(); len(b) != 1 || b[0].Origin != delivery.OriginPolicy {
		t.Errorf("bounces %+v", b)
	}
	again := delivery.New(delivery.Options{Store: sp, Rules: sp, Transport: nopTransport{}, RelayTo: "127.0.0.1:1"})
	defer again.Stop(context.Background())
	if n, err := again.RestoreRules(); n != 2 || err != nil {
		t.Fatalf("restore: %d %v", n, err)
	}
	if s := again.Suspensions(); len(s) != 1 || s[0].Origin != delivery.OriginPolicy || s[0].Reason != "421 storm" {
		t.Errorf("restored suspensions %+v", s)
	}
}
