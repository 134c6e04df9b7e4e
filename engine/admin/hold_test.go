package admin

import (
	"testing"
)

// TestHoldEndpoint: holds by ids and by selector over the API, listed with
// their ids, released by a message id, a hold id or the selector; bad
// input, unknown ids and another tenant's mail are refused.
func TestHoldEndpoint(t *testing.T) {
	w := newWorld(t)
	acme := w.queueMail(t, "acme", "spring", "a@x.test")
	other := w.queueMail(t, "other", "", "c@x.test")
	tenantAddr := "192.0.2.9:5000"
	for _, c := range []struct {
		name, method, body, key, addr string
		want                          int
	}{
		{"hold nothing", "POST", `{}`, "", "", 422},
		{"hold ids and selector", "POST", `{"domain":"x.test","ids":["` + acme + `"]}`, "", "", 422},
		{"hold an unknown id", "POST", `{"ids":["nope"]}`, "", "", 404},
		{"hold another tenant's id", "POST", `{"ids":["` + other + `"]}`, "key-acme", tenantAddr, 404},
		{"hold another tenant", "POST", `{"tenant":"other"}`, "key-acme", tenantAddr, 403},
		{"release nothing", "DELETE", `{}`, "", "", 422},
		{"release an unknown id", "DELETE", `{"ids":["nope"]}`, "", "", 404},
		{"release a selector not held", "DELETE", `{"domain":"x.test"}`, "", "", 404},
		{"unknown field", "POST", `{"id":"x"}`, "", "", 400},
	} {
		if got := w.call(t, c.method, PathHold, c.body, c.key, c.addr, nil); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}

	var byID, bySel HoldV1Response
	if code := w.call(t, "POST", PathHold, `{"ids":["`+acme+`"],"reason":"look first"}`, "key-acme", tenantAddr, &byID); code != 200 || byID.ID == "" {
		t.Fatalf("hold by id: %d %+v", code, byID)
	}
	if code := w.call(t, "POST", PathHold, `{"domain":"x.test"}`, "", "", &bySel); code != 200 {
		t.Fatalf("hold by selector: %d", code)
	}
	var list []RuleEntry
	w.call(t, "GET", PathHold, "", "key-acme", tenantAddr, &list)
	if len(list) != 1 || list[0].ID != byID.ID || list[0].Origin != "api" || len(list[0].IDs) != 1 || list[0].IDs[0] != acme ||
		list[0].Tenant != "acme" || list[0].Reason != "look first" {
		t.Errorf("the tenant's holds: %+v", list)
	}
	list = nil
	if w.call(t, "GET", PathHold, "", "", "", &list); len(list) != 2 {
		t.Errorf("every hold: %+v", list)
	}
	var rel ReleaseV1Response
	if code := w.call(t, "DELETE", PathHold, `{"ids":["`+acme+`"]}`, "key-acme", tenantAddr, &rel); code != 200 ||
		len(rel.Released) != 1 || rel.Released[0] != acme {
		t.Errorf("release by message id: %d %+v", code, rel)
	}
	rel = ReleaseV1Response{}
	if code := w.call(t, "DELETE", PathHold, `{"domain":"x.test"}`, "", "", &rel); code != 200 ||
		len(rel.Released) != 1 || rel.Released[0] != bySel.ID {
		t.Errorf("release by selector: %d %+v", code, rel)
	}
	list = nil
	if w.call(t, "GET", PathHold, "", "", "", &list); len(list) != 0 {
		t.Errorf("holds left: %+v", list)
	}
}
