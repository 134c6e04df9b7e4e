package admin

import (
	"regexp"
	"testing"
	"time"

	"gannet/engine/delivery"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
)

// TestBackoffViews: a site the deferral rate put in backoff shows in the
// queue summary (backoff, with its reason and end, and its site row) and
// in the per-site view; a tenant's key sees neither; an operator's DELETE
// returns it to normal.
func TestBackoffViews(t *testing.T) {
	var sh *shaping.Shaper
	var loop *delivery.Loop
	sh = shaping.New(shaping.Config{
		Backoff: shaping.Backoff{Disabled: true},
		Rules:   []shaping.Rule{{Regex: regexp.MustCompile(`never`), Action: shaping.BackoffMode}},
		Mode: func(string, []string) shaping.Mode {
			return shaping.Mode{DeferralRate: 0.3, Window: 5 * time.Minute, MinAttempts: 2, Rate: 100.0 / 3600,
				RetryAfter: 10 * time.Minute, ToNormalAfter: time.Hour, ToNormalAfterDeliveries: 50}
		},
		OnBackoff: func(e shaping.BackoffEvent) { loop.BackoffChanged(e) },
	})
	w := newWorldWith(t, t.TempDir(), func(o *delivery.Options) {
		o.Shaper, o.Backoff = sh, sh
		o.Limits = func(outbound.Path) outbound.Limits { return outbound.Limits{Connections: 1} }
	}, func(o *Options) {
		o.Backoffs = func() []BackoffEntry {
			var out []BackoffEntry
			for _, st := range sh.Backoffs() {
				out = append(out, BackoffEntryOf(st))
			}
			return out
		}
		o.EndBackoff = func(site string) bool { return sh.EndBackoff(site, "ended by an operator") }
	})
	loop = w.loop
	w.queueMail(t, "acme", "", "a@x.test", "b@x.test") // two attempts, both deferred (451)

	var s QueueSummaryV1
	if code := w.call(t, "GET", PathQueueSummary, "", "", "", &s); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	if len(s.Backoff) != 1 {
		t.Fatalf("summary backoff %+v, want the relay site", s.Backoff)
	}
	b := s.Backoff[0]
	if b.Site != "127.0.0.1:1" || b.Origin != "deferral-rate" || b.Reason != "deferral rate 1.00 over 5m (2/2)" ||
		b.Until == nil || b.Until.Sub(b.Since) != time.Hour || b.RetryAfter != "10m0s" || b.ToNormalAfterDeliveries != 50 {
		t.Errorf("backoff entry %+v", b)
	}
	if len(s.Sites) != 1 || !s.Sites[0].Backoff || s.Sites[0].EffectiveRate != 100.0/3600 {
		t.Errorf("site rows %+v, want the site in backoff at 100/h", s.Sites)
	}
	var tenant QueueSummaryV1
	w.call(t, "GET", PathQueueSummary, "", "key-acme", "192.0.2.1:1", &tenant)
	if len(tenant.Backoff) != 0 {
		t.Errorf("a tenant's key sees the backoff %+v", tenant.Backoff)
	}
	if code := w.call(t, "GET", PathBackoff, "", "key-acme", "192.0.2.1:1", nil); code != 403 {
		t.Errorf("per-site view with a tenant's key: %d, want 403", code)
	}

	var view BackoffResponse
	if code := w.call(t, "GET", PathBackoff+"?site=127.0.0.1:1", "", "", "", &view); code != 200 ||
		len(view.Sites) != 1 || view.Sites[0].Reason != b.Reason {
		t.Errorf("per-site view: %d %+v", code, view)
	}
	if code := w.call(t, "GET", PathBackoff+"?site=mx.other.test", "", "", "", &view); code != 200 || len(view.Sites) != 0 {
		t.Errorf("per-site view of a site not in backoff: %d %+v", code, view)
	}
	if code := w.call(t, "DELETE", PathBackoff+"?site=127.0.0.1:1", "", "", "", nil); code != 200 {
		t.Errorf("DELETE: %d", code)
	}
	if code := w.call(t, "DELETE", PathBackoff+"?site=127.0.0.1:1", "", "", "", nil); code != 404 {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	s = QueueSummaryV1{}
	w.call(t, "GET", PathQueueSummary, "", "", "", &s)
	if len(s.Backoff) != 0 || s.Sites[0].Backoff {
		t.Errorf("after DELETE: backoff %+v, sites %+v", s.Backoff, s.Sites)
	}
	var types []string
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	for _, r := range w.rec.recs {
		if r.Site == "127.0.0.1:1" && r.Recipient == "" {
			types = append(types, string(r.Type)+": "+r.Reason)
		}
	}
	if len(types) != 2 || types[0] != "BackoffStart: deferral rate 1.00 over 5m (2/2)" || types[1] != "BackoffEnd: ended by an operator" {
		t.Errorf("backoff records %q", types)
	}
}
