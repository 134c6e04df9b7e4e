package admin

import (
	"net/http"
	"testing"
)

// TestXferEndpoint: POST /api/admin/xfer/v1 makes an xfer rule (the
// matching deferred mail is due at once and goes to the target), GET lists
// it with its target, DELETE cancels it; bad requests and tenants' keys are
// refused.
func TestXferEndpoint(t *testing.T) {
	w := newWorld(t)
	w.queueMail(t, "acme", "", "a@x.test")
	w.queueMail(t, "acme", "", "b@y.test")
	for _, c := range []struct {
		name, method, body, key, addr string
		want                          int
	}{
		{"no target", "POST", `{"domain":"x.test"}`, "", "", http.StatusUnprocessableEntity},
		{"a node id, not host:port", "POST", `{"to":"node-b","domain":"x.test"}`, "", "", http.StatusUnprocessableEntity},
		{"bad port", "POST", `{"to":"127.0.0.1:99999","domain":"x.test"}`, "", "", http.StatusUnprocessableEntity},
		{"this node itself", "POST", `{"to":"127.0.0.1:2525","domain":"x.test"}`, "", "", http.StatusUnprocessableEntity},
		{"no selector", "POST", `{"to":"127.0.0.1:2526"}`, "", "", http.StatusUnprocessableEntity},
		{"unknown field", "POST", `{"to":"127.0.0.1:2526","domian":"x.test"}`, "", "", http.StatusBadRequest},
		{"a tenant's key", "POST", `{"to":"127.0.0.1:2526","tenant":"acme"}`, "key-acme", "192.0.2.9:5000", http.StatusForbidden},
		{"a tenant's key lists", "GET", ``, "key-acme", "192.0.2.9:5000", http.StatusForbidden},
		{"cancel unknown", "DELETE", `{"id":"nosuch"}`, "", "", http.StatusNotFound},
		{"cancel without id", "DELETE", `{}`, "", "", http.StatusUnprocessableEntity},
	} {
		if got := w.call(t, c.method, PathXfer, c.body, c.key, c.addr, nil); got != c.want {
			t.Errorf("%s: %s %s → %d, want %d", c.name, c.method, c.body, got, c.want)
		}
	}
	if l := w.loop.Xfers(); len(l) != 0 {
		t.Fatalf("rules after refusals: %+v", l)
	}

	before := w.tr.count()
	var made XferV1Response
	if code := w.call(t, "POST", PathXfer, `{"to":"LOCALHOST:2526","domain":"x.test","reason":"retiring"}`, "", "", &made); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	if made.ID == "" || made.Target != "localhost:2526" || made.Retried != 1 || made.Recipients != 1 {
		t.Fatalf("POST answer %+v", made)
	}
	// The deferred mail of x.test was due at once: one more attempt (to
	// the target, which this transport defers too).
	waitUntil(t, func() bool { return w.tr.count() == before+1 })
	var list []RuleEntry
	if code := w.call(t, "GET", PathXfer, ``, "", "", &list); code != 200 || len(list) != 1 ||
		list[0].ID != made.ID || list[0].Target != "localhost:2526" || list[0].Domain != "x.test" || list[0].Reason != "retiring" || list[0].Origin != "api" {
		t.Fatalf("GET: %d %+v", code, list)
	}
	var ended RuleEntry
	if code := w.call(t, "DELETE", PathXfer, `{"id":"`+made.ID+`"}`, "", "", &ended); code != 200 || ended.ID != made.ID || ended.Target != "localhost:2526" {
		t.Fatalf("DELETE: %d %+v", code, ended)
	}
	if code := w.call(t, "GET", PathXfer, ``, "", "", &list); code != 200 || len(list) != 0 {
		t.Fatalf("GET after DELETE: %d %+v", code, list)
	}
}
