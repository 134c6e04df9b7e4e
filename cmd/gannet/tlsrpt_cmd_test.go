package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTLSRPTCLI: list, show and send print what the admin API answers and
// ask it the right things; bad usage sends nothing.
func TestTLSRPTCLI(t *testing.T) {
	var reqs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs = append(reqs, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path != "/api/admin/tls-reports/v1":
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"no"}`)
		case r.Method == "POST":
			io.WriteString(w, `{"day":"2026-12-06","domains":[{"domain":"a.test","successful":1,"failed":0,"policies":["sts"],"report":{"status":"sent","built":"2026-12-07T01:00:00Z","successful":0,"failed":0,"deliveries":[{"uri":"https://r.test/x","attempts":1,"done":true,"gave_up":false}]}}],"done":true}`)
		case r.URL.Query().Get("domain") == "a.test":
			io.WriteString(w, `{"day":"2026-12-06","domain":"a.test","counts":{"domain":"a.test","policies":[{"policy-type":"sts","mx-host":["mx.a.test"],"successful":4,"failed":2,"failure-details":[{"result-type":"certificate-expired","receiving-mx-hostname":"mx.a.test","receiving-ip":"192.0.2.1","count":2}]}]},"json":{}}`)
		case r.URL.Query().Get("domain") != "":
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"nothing counted for b.test on 2026-12-06"}`)
		default:
			io.WriteString(w, `{"enabled":true,"days":[{"day":"2026-12-06","domains":[{"domain":"a.test","successful":4,"failed":2,"policies":["sts"]}],"done":false}]}`)
		}
	}))
	defer srv.Close()
	api := "-api=" + srv.URL
	t.Setenv("GANNET_API_KEY", "")

	out, _, code := runCLI("tlsrpt", "list", api)
	if code != 0 || !strings.Contains(out, "2026-12-06  (counting)") || !strings.Contains(out, "a.test") || !strings.Contains(out, "sts") {
		t.Errorf("list (%d): %q", code, out)
	}
	out, _, code = runCLI("tlsrpt", "show", "a.test", "-day", "2026-12-06", api)
	if code != 0 || !strings.Contains(out, "policy sts (mx mx.a.test): 4 successful, 2 failed") || !strings.Contains(out, "certificate-expired") ||
		!strings.Contains(out, "no report made yet") || !strings.Contains(reqs[len(reqs)-1], "day=2026-12-06") {
		t.Errorf("show (%d): %q %q", code, out, reqs[len(reqs)-1])
	}
	_, errOut, code := runCLI("tlsrpt", "show", "b.test", api)
	if code != 1 || !strings.Contains(errOut, "nothing counted for b.test") {
		t.Errorf("show of an unknown domain (%d): %q", code, errOut)
	}
	out, _, code = runCLI("tlsrpt", "send", "-day", "2026-12-06", api)
	if code != 0 || !strings.Contains(out, "(reported)") || !strings.Contains(out, "https://r.test/x") ||
		!strings.Contains(reqs[len(reqs)-1], `POST /api/admin/tls-reports/v1 {"day":"2026-12-06"}`) {
		t.Errorf("send (%d): %q %q", code, out, reqs[len(reqs)-1])
	}
	n := len(reqs)
	for _, args := range [][]string{{"tlsrpt"}, {"tlsrpt", "show"}, {"tlsrpt", "list", "-day", "2026-12-06"}, {"tlsrpt", "nope"}} {
		if _, _, code := runCLI(append(args, api)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if len(reqs) != n {
		t.Error("a usage error sent a request")
	}
}
