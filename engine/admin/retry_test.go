package admin

import (
	"testing"
)

// TestRetryEndpoint: POST /api/admin/retry/v1 by selector and by ids makes
// the deferred mail attempted at once and says how much; bad selectors,
// unknown ids and another tenant's mail are refused with JSON errors.
func TestRetryEndpoint(t *testing.T) {
	w := newWorld(t)
	acme := w.queueMail(t, "acme", "spring", "a@x.test", "b@y.test")
	other := w.queueMail(t, "other", "", "c@x.test")
	tenantAddr := "192.0.2.9:5000"

	for _, c := range []struct {
		name, body, key, addr string
		want                  int
	}{
		{"empty", `{}`, "", "", 422},
		{"blank selector", `{"domain":"  "}`, "", "", 422},
		{"ids and selector", `{"domain":"x.test","ids":["` + acme + `"]}`, "", "", 422},
		{"empty id", `{"ids":[""]}`, "", "", 422},
		{"unknown id", `{"ids":["` + acme + `","nope"]}`, "", "", 404},
		{"unknown field", `{"domian":"x.test"}`, "", "", 400},
		{"bad JSON", `{"domain":`, "", "", 400},
		{"another tenant", `{"tenant":"other","domain":"x.test"}`, "key-acme", tenantAddr, 403},
		{"another tenant's id", `{"ids":["` + other + `"]}`, "key-acme", tenantAddr, 404},
		{"no key", `{"domain":"x.test"}`, "", tenantAddr, 401},
	} {
		if got := w.call(t, "POST", PathRetry, c.body, c.key, c.addr, nil); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if got := w.call(t, "GET", PathRetry, "", "", "", nil); got != 405 {
		t.Errorf("GET: %d, want 405", got)
	}
	if n := w.tr.count(); n != 3 {
		t.Fatalf("a refused request made attempts: %d recipients tried, want 3", n)
	}

	// A tenant's key by domain: only its own mail at x.test.
	var res RetryV1Response
	if code := w.call(t, "POST", PathRetry, `{"domain":"x.test"}`, "key-acme", tenantAddr, &res); code != 200 ||
		res.Retried != 1 || res.Recipients != 1 {
		t.Fatalf("tenant retry: %d %+v, want 1 message, 1 recipient", code, res)
	}
	waitUntil(t, func() bool { return w.tr.count() == 4 })
	// The operator by id: every deferred destination of the message.
	waitUntil(t, func() bool { s := w.loop.Summary(""); return s.Scheduled == 3 && s.InFlight == 0 && s.Ready == 0 })
	res = RetryV1Response{}
	if code := w.call(t, "POST", PathRetry, `{"ids":["`+other+`"," `+acme+`"]}`, "", "", &res); code != 200 ||
		res.Retried != 2 || res.Recipients != 3 {
		t.Fatalf("retry by ids: %d %+v, want 2 messages, 3 recipients", code, res)
	}
	waitUntil(t, func() bool { return w.tr.count() == 7 })
}
