package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The admin API and CLI end to end: curl against every endpoint and
// refusal, the gannet CLI against a running relay, and what an operator's
// bounce or suspension does to what a receiver gets.

const (
	acmeKey = "acme-key-e2e-0123456789"
	rootKey = "root-key-e2e-0123456789"
)

// adminExtra is the config the admin tests add: a tenant and two API keys,
// one bound to the tenant and one for an operator of everything.
const adminExtra = `
[[tenant]]
name = "acme"

[[api_key]]
key = "` + acmeKey + `"
tenant = "acme"

[[api_key]]
key = "` + rootKey + `"
`

// curlResult is one HTTP exchange made with curl.
type curlResult struct {
	status int
	body   string
}

// adminCurl calls the relay's HTTP API with curl: method, path, an optional
// JSON body and more curl arguments (--interface, -H).
func adminCurl(t *testing.T, g *gannet, method, path, body string, extra ...string) curlResult {
	t.Helper()
	curl := needExecutable(t, "curl", "curl")
	args := []string{"-sS", "-X", method, "-w", "\n%{http_code}", "--max-time", "30"}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", body)
	}
	args = append(args, extra...)
	args = append(args, "http://"+g.HTTPAddr+path)
	out, err := exec.Command(curl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s %s: %v\n%s", method, path, err, out)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	code, err := strconv.Atoi(s[i+1:])
	if err != nil {
		t.Fatalf("curl %s %s: no status in %q", method, path, out)
	}
	return curlResult{status: code, body: s[:max(i, 0)]}
}

// want checks the status and, for a refusal, the JSON {"error"} body.
func (r curlResult) want(t *testing.T, what string, status int) curlResult {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: HTTP %d, want %d; body %s", what, r.status, status, r.body)
		return r
	}
	if status >= 400 {
		var e struct{ Error string }
		if json.Unmarshal([]byte(r.body), &e) != nil || e.Error == "" {
			t.Errorf("%s: refusal without a JSON {\"error\"}: %s", what, r.body)
		}
	}
	return r
}

func (r curlResult) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
}

// runGannetCLI runs the gannet admin CLI against g and returns stdout,
// stderr and the exit status.
func runGannetCLI(t *testing.T, g *gannet, args ...string) (string, string, int) {
	t.Helper()
	return runGannetAt(t, "http://"+g.HTTPAddr, args...)
}

func runGannetAt(t *testing.T, api string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(gannetBinary(t), append(args, "-api", api)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(cmd.Environ(), "GANNET_API_KEY=")
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// injectSimple queues one message over POST /v1/message and returns its id.
func injectSimple(t *testing.T, g *gannet, to, tenant, campaign, subject string) string {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"from": "app@src.test", "to": []string{to}, "subject": subject,
		"text": "admin e2e\n", "tenant": tenant, "campaign": campaign})
	r := adminCurl(t, g, "POST", "/v1/message", string(req)).want(t, "inject", 202)
	var ans struct{ ID string }
	r.decode(t, &ans)
	if ans.ID == "" {
		t.Fatalf("inject answer %s", r.body)
	}
	return ans.ID
}

// summaryOf reads the queue summary.
type e2eSummary struct {
	Totals struct {
		Messages, Recipients, Scheduled, Ready, Held, Suspensions, Bounces int
		InFlight                                                           int `json:"in_flight"`
	}
	Queues []struct {
		Name, Domain, Tenant string
		Messages, Held       int
		Suspended, Bouncing  bool
	}
}

func summaryOf(t *testing.T, g *gannet) e2eSummary {
	t.Helper()
	var s e2eSummary
	adminCurl(t, g, "GET", "/api/admin/queue-summary/v1", "").want(t, "queue summary", 200).decode(t, &s)
	return s
}

// TestE2EAdminAPI: every admin endpoint and every refusal with curl, and
// the CLI against the running relay.
func TestE2EAdminAPI(t *testing.T) {
	w := newRelayWorld(t)
	checkLoopbackAlias(t, foreignIP)
	g := w.gannet(t, gannetConfig{Extra: adminExtra}) // no receiver: mail stays queued
	id := injectSimple(t, g, "u1@"+domain1, "acme", "c1", "first")
	id2 := injectSimple(t, g, "u2@"+domain1, "", "", "second")
	g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id}, 1, deliveryMax)
	g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id2}, 1, deliveryMax)

	// Liveness needs no key, even from an untrusted address.
	r := adminCurl(t, g, "GET", "/api/check-liveness/v1", "", "--interface", foreignIP).want(t, "liveness", 200)
	if !strings.Contains(r.body, `"status":"ok"`) {
		t.Errorf("liveness body %s", r.body)
	}

	// Queue summary.
	s := summaryOf(t, g)
	if s.Totals.Messages != 2 || s.Totals.Recipients != 2 || len(s.Queues) != 2 {
		t.Errorf("summary %+v", s)
	}

	// Inspect.
	var in struct {
		ID      string
		Message struct {
			Sender     string
			Recipients []struct {
				Email, State string
				Attempts     int
				LastReply    string `json:"last_reply"`
			}
			NumAttempts int `json:"num_attempts"`
			Tenant      string
			Campaign    string
			Data        *string
			Headers     *string
		}
	}
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+id, "").want(t, "inspect", 200).decode(t, &in)
	m := in.Message
	if in.ID != id || m.Sender != "app@src.test" || m.Tenant != "acme" || m.Campaign != "c1" || len(m.Recipients) != 1 ||
		m.Recipients[0].State != "pending" || m.Recipients[0].Attempts < 1 || !strings.HasPrefix(m.Recipients[0].LastReply, "4") || m.Data != nil {
		t.Errorf("inspect %+v", in)
	}
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+id+"&want_body=true", "").want(t, "inspect with body", 200).decode(t, &in)
	if in.Message.Data == nil || !strings.Contains(*in.Message.Data, "Subject: first") || in.Message.Headers == nil ||
		!strings.Contains(*in.Message.Headers, "Subject: first") || strings.Contains(*in.Message.Headers, "admin e2e") {
		t.Errorf("inspect with body: %+v", in.Message)
	}

	// Suspend, list, resume by id.
	var sr struct{ ID string }
	adminCurl(t, g, "POST", "/api/admin/suspend/v1", `{"domain":"d3.test","reason":"e2e","duration":"10m"}`).want(t, "suspend", 200).decode(t, &sr)
	r = adminCurl(t, g, "GET", "/api/admin/suspend/v1", "").want(t, "suspend list", 200)
	if sr.ID == "" || !strings.Contains(r.body, `"id":"`+sr.ID+`"`) || !strings.Contains(r.body, `"domain":"d3.test"`) {
		t.Errorf("suspension %q not listed: %s", sr.ID, r.body)
	}
	adminCurl(t, g, "DELETE", "/api/admin/suspend/v1", `{"id":"`+sr.ID+`"}`).want(t, "resume", 200)
	adminCurl(t, g, "DELETE", "/api/admin/suspend/v1", `{"id":"`+sr.ID+`"}`).want(t, "resume twice", 404)

	// Bounce list and cancel.
	var br struct {
		ID           string
		TotalBounced int `json:"total_bounced"`
	}
	adminCurl(t, g, "POST", "/api/admin/bounce/v1", `{"domain":"d3.test","reason":"nothing queued there"}`).want(t, "bounce", 200).decode(t, &br)
	if br.ID == "" || br.TotalBounced != 0 {
		t.Errorf("bounce answer %+v", br)
	}
	r = adminCurl(t, g, "GET", "/api/admin/bounce/v1", "").want(t, "bounce list", 200)
	if !strings.Contains(r.body, br.ID) {
		t.Errorf("bounce list %s", r.body)
	}
	adminCurl(t, g, "DELETE", "/api/admin/bounce/v1", `{"id":"`+br.ID+`"}`).want(t, "cancel bounce", 200)

	// Refusals.
	adminCurl(t, g, "POST", "/api/admin/bounce/v1", `{"domain":`).want(t, "bad JSON", 400)
	adminCurl(t, g, "POST", "/api/admin/suspend/v1", `{"domian":"d1.test"}`).want(t, "unknown field", 400)
	adminCurl(t, g, "DELETE", "/api/admin/suspend/v1", `not json`).want(t, "bad JSON on DELETE", 400)
	adminCurl(t, g, "POST", "/api/admin/bounce/v1", `{"reason":"everything?"}`).want(t, "bounce without selector", 422)
	adminCurl(t, g, "POST", "/api/admin/suspend/v1", `{"reason":"x"}`).want(t, "suspend without selector", 422)
	adminCurl(t, g, "POST", "/api/admin/suspend/v1", `{"domain":"d1.test","duration":"a while"}`).want(t, "bad duration", 422)
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1", "").want(t, "inspect without id", 422)
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id=nosuchmessage", "").want(t, "inspect unknown id", 404)
	adminCurl(t, g, "DELETE", "/api/admin/bounce/v1", `{"id":"nosuchrule"}`).want(t, "cancel unknown bounce", 404)
	adminCurl(t, g, "DELETE", "/api/admin/suspend/v1", `{"id":"nosuchrule"}`).want(t, "resume unknown id", 404)
	adminCurl(t, g, "PUT", "/api/admin/bounce/v1", `{}`).want(t, "PUT", 405)
	adminCurl(t, g, "GET", "/api/admin/nothing/v1", "").want(t, "unknown admin path", 404)
	for _, p := range []string{"/api/admin/queue-summary/v1", "/api/admin/inspect-message/v1?id=" + id, "/api/admin/bounce/v1", "/api/admin/suspend/v1"} {
		adminCurl(t, g, "GET", p, "", "--interface", foreignIP).want(t, "GET "+p+" from "+foreignIP+" without a key", 401)
	}
	adminCurl(t, g, "POST", "/api/admin/bounce/v1", `{"domain":"d1.test"}`, "--interface", foreignIP).want(t, "bounce from "+foreignIP+" without a key", 401)
	adminCurl(t, g, "DELETE", "/api/admin/suspend/v1", `{"domain":"d1.test"}`, "--interface", foreignIP).want(t, "resume from "+foreignIP+" without a key", 401)
	adminCurl(t, g, "GET", "/api/admin/queue-summary/v1", "", "--interface", foreignIP, "-H", "Authorization: Bearer wrong").want(t, "wrong key", 401)
	adminCurl(t, g, "GET", "/api/admin/queue-summary/v1", "", "--interface", foreignIP, "-H", "Authorization: Bearer "+rootKey).want(t, "operator key", 200)

	// A tenant's key: its own mail only.
	auth := []string{"--interface", foreignIP, "-H", "Authorization: Bearer " + acmeKey}
	var ts e2eSummary
	adminCurl(t, g, "GET", "/api/admin/queue-summary/v1", "", auth...).want(t, "tenant summary", 200).decode(t, &ts)
	if ts.Totals.Messages != 1 || len(ts.Queues) != 1 || ts.Queues[0].Tenant != "acme" {
		t.Errorf("tenant summary %+v", ts)
	}
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+id2, "", auth...).want(t, "tenant inspects another's message", 404)
	adminCurl(t, g, "POST", "/api/admin/bounce/v1", `{"tenant":"other","domain":"d1.test"}`, auth...).want(t, "tenant bounces another tenant", 403)
	adminCurl(t, g, "POST", "/api/admin/suspend/v1", `{"tenant":"other","domain":"d1.test"}`, auth...).want(t, "tenant suspends another tenant", 403)

	// The CLI against the same relay.
	out, errOut, code := runGannetCLI(t, g, "queue", "summary")
	if code != 0 || !strings.Contains(out, "2 message(s)") || !strings.Contains(out, "c1:acme@d1.test") {
		t.Errorf("gannet queue summary (%d):\n%s%s", code, out, errOut)
	}
	out, errOut, code = runGannetCLI(t, g, "queue", "inspect", id)
	if code != 0 || !strings.Contains(out, "u1@d1.test") || !strings.Contains(out, "pending") {
		t.Errorf("gannet queue inspect (%d):\n%s%s", code, out, errOut)
	}
	_, errOut, code = runGannetCLI(t, g, "queue", "inspect", "nosuchmessage")
	if code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("gannet queue inspect unknown (%d): %s", code, errOut)
	}
	out, errOut, code = runGannetCLI(t, g, "suspend", "-domain", "d3.test", "-reason", "cli")
	if code != 0 || !strings.Contains(out, "suspension ") {
		t.Errorf("gannet suspend (%d): %s%s", code, out, errOut)
	}
	out, _, code = runGannetCLI(t, g, "suspend", "-list")
	if code != 0 || !strings.Contains(out, "d3.test") || !strings.Contains(out, "cli") {
		t.Errorf("gannet suspend -list (%d):\n%s", code, out)
	}
	out, errOut, code = runGannetCLI(t, g, "resume", "-domain", "d3.test")
	if code != 0 || !strings.HasPrefix(out, "resumed ") {
		t.Errorf("gannet resume -domain (%d): %s%s", code, out, errOut)
	}
	out, _, code = runGannetCLI(t, g, "queue", "summary", "-json")
	var js e2eSummary
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || js.Totals.Messages != 2 {
		t.Errorf("gannet queue summary -json (%d): %s", code, out)
	}
	closed := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	_, errOut, code = runGannetAt(t, "http://"+closed, "queue", "summary")
	if code != 1 || !strings.Contains(errOut, "cannot reach the admin API") {
		t.Errorf("gannet against nothing (%d): %s", code, errOut)
	}
}

// TestE2EAdminSuspendResume: mail to a suspended domain stays queued and
// never reaches the receiver, even once it takes mail again, until resumed;
// then it all arrives.
//
// The receiver first refuses every recipient with 450 4.2.1 (a receiver
// that is down would do, but outbound then skips its address for 30 s after
// the resume, and a 451 or 4.7.x would make adaptive back-off slow the site
// down; either only makes the test slow).
func TestE2EAdminSuspendResume(t *testing.T) {
	w := newRelayWorld(t)
	refusing := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{FailRcpt: "450 4.2.1 mailbox busy, try later"})
	g := w.gannet(t, gannetConfig{Extra: adminExtra})
	const n = 5
	var ids []string
	for i := range n {
		ids = append(ids, injectSimple(t, g, fmt.Sprintf("s%d@%s", i, domain1), "acme", "", fmt.Sprintf("suspended %d", i)))
	}
	for _, id := range ids {
		g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id}, 1, deliveryMax)
	}
	out, errOut, code := runGannetCLI(t, g, "suspend", "-domain", domain1, "-reason", "receiver maintenance", "-duration", "10m")
	if code != 0 {
		t.Fatalf("gannet suspend (%d): %s%s", code, out, errOut)
	}
	// Mail arriving while suspended is held too.
	ids = append(ids, injectSimple(t, g, "late@"+domain1, "", "", "late"))
	waitFor(t, deliveryMax, "every message held", func() (bool, string) {
		s := summaryOf(t, g)
		return s.Totals.Held == n+1, fmt.Sprintf("%+v", s.Totals)
	})
	if !refusing.p.stop() {
		t.Fatal("aiosmtpd did not stop")
	}
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	time.Sleep(3 * time.Second) // retry_interval is 1s: attempts would have come
	if got := rcv.arrivals(t); len(got) != 0 {
		t.Fatalf("%d message(s) reached the receiver of a suspended domain", len(got))
	}
	s := summaryOf(t, g)
	if s.Totals.Held != n+1 || len(s.Queues) == 0 || !s.Queues[0].Suspended {
		t.Errorf("summary while suspended: %+v", s)
	}
	out, errOut, code = runGannetCLI(t, g, "resume", "-domain", domain1)
	if code != 0 || !strings.HasPrefix(out, "resumed ") {
		t.Fatalf("gannet resume (%d): %s%s", code, out, errOut)
	}
	waitArrivals(t, rcv, n+1, deliveryMax)
	for _, id := range ids {
		g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	}
	time.Sleep(settleTime)
	if got := countRcpts(t, rcv); got != n+1 {
		t.Errorf("receiver got %d recipients, want %d", got, n+1)
	}
}

// TestE2EAdminBounce: a bounce by domain turns the queued mail into
// AdminBounce records and the receiver never sees it, nor new mail while
// the bounce is in force; other domains are not touched.
func TestE2EAdminBounce(t *testing.T) {
	w := newRelayWorld(t)
	ok := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{Extra: adminExtra})
	const n = 4
	var ids []string
	for i := range n {
		ids = append(ids, injectSimple(t, g, fmt.Sprintf("b%d@%s", i, domain2), "acme", "promo", fmt.Sprintf("bounced %d", i)))
	}
	for _, id := range ids {
		g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id}, 1, deliveryMax) // d2's receiver is down
	}
	out, errOut, code := runGannetCLI(t, g, "bounce", "-domain", domain2, "-reason", "bad list", "-duration", "2m")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d recipient(s) bounced", n)) || !strings.Contains(out, "promo:acme@"+domain2) {
		t.Fatalf("gannet bounce (%d): %s%s", code, out, errOut)
	}
	late := injectSimple(t, g, "late@"+domain2, "", "", "late")
	control := injectSimple(t, g, "kept@"+domain1, "", "", "control")
	rcv := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{})

	for i, id := range append(ids, late) {
		rec := g.WaitRecords(recordFilter{Type: "AdminBounce", ID: id}, 1, deliveryMax)[0]
		if rec.Response.Code != 551 || rec.Response.EnhancedCode() != "5.7.1" || rec.Response.Content != "Administrator bounced: bad list" {
			t.Errorf("AdminBounce record %s", rec.Raw)
		}
		if i < n && (rec.Tenant != "acme" || rec.Campaign != "promo" || rec.Queue != "promo:acme@"+domain2 || !rec.HasRecipient(fmt.Sprintf("b%d@%s", i, domain2))) {
			t.Errorf("AdminBounce record %s", rec.Raw)
		}
	}
	g.WaitRecords(recordFilter{Type: "Delivery", ID: control}, 1, deliveryMax)
	time.Sleep(3 * time.Second) // retry_interval is 1s: a surviving retry would show
	if got := rcv.arrivals(t); len(got) != 0 {
		t.Errorf("%d bounced message(s) reached the receiver", len(got))
	}
	if got := countRcpts(t, ok); got != 1 {
		t.Errorf("the other domain's receiver got %d recipients, want 1", got)
	}
	if s := summaryOf(t, g); s.Totals.Messages != 0 || s.Totals.Bounces != 1 {
		t.Errorf("summary after the bounce: %+v", s)
	}
	for _, id := range ids {
		adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+id, "").want(t, "inspect a bounced message", 404)
		if d := selectRecords(g.Records(), recordFilter{Type: "Delivery", ID: id}); len(d) != 0 {
			t.Errorf("bounced message %s was delivered", id)
		}
	}
}

// TestE2EInjectKumoSubstitutions: one KumoMTA-style inject request for 100
// recipients with per-recipient substitutions arrives at aiosmtpd as 100
// messages whose MIME structure Python's email package reads back.
func TestE2EInjectKumoSubstitutions(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{})
	const n = 100
	type rcpt struct {
		Email         string         `json:"email"`
		Name          string         `json:"name"`
		Substitutions map[string]any `json:"substitutions"`
	}
	req := map[string]any{
		"envelope_sender": "news@src.test",
		"campaign":        "kumo-e2e",
		"substitutions":   map[string]any{"brand": "Gannet Weekly"},
		"content": map[string]any{
			"from":      map[string]any{"email": "news@src.test", "name": "{{ brand }} for {{ first }}"},
			"subject":   "Hello {{ first }}, issue {{ issue }}",
			"text_body": "Dear {{ first }},\nyour code is {{ code }}.\n.\n-- {{ brand }}\n",
			"html_body": "<p>Dear {{ first }}, your code is <b>{{ code }}</b>.</p>",
			"headers":   map[string]string{"X-Code": "{{ code }}"},
			"attachments": []map[string]any{{"data": "Y29kZXMsZm9yLGFsbAo=", "base64": true,
				"content_type": "text/csv", "file_name": "codes.csv"}},
		},
	}
	var rcpts []rcpt
	for i := range n {
		rcpts = append(rcpts, rcpt{Email: fmt.Sprintf("k%03d@%s", i, domain1), Name: fmt.Sprintf("Reader %d", i),
			Substitutions: map[string]any{"first": fmt.Sprintf("Ann%03d", i), "code": fmt.Sprintf("C-%03d", i), "issue": 7}})
	}
	req["recipients"] = rcpts
	body, _ := json.Marshal(req)
	r := adminCurl(t, g, "POST", "/api/inject/v1", string(body)).want(t, "inject", 200)
	var ans struct {
		SuccessCount int `json:"success_count"`
		FailCount    int `json:"fail_count"`
	}
	r.decode(t, &ans)
	if ans.SuccessCount != n || ans.FailCount != 0 {
		t.Fatalf("inject answer %s", r.body)
	}
	got := waitArrivals(t, rcv, n, 2*deliveryMax)
	var files []string
	for _, a := range got {
		files = append(files, a.File)
	}
	script := `
import sys, json, email, email.policy
out = []
for path in json.load(sys.stdin):
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    parts = [p.get_content_type() for p in m.walk()]
    att = [p for p in m.iter_attachments()]
    out.append({"to": str(m["to"]), "from": str(m["from"]), "subject": str(m["subject"]), "x_code": str(m["x-code"]),
        "type": m.get_content_type(), "parts": parts,
        "text": m.get_body(("plain",)).get_content(), "html": m.get_body(("html",)).get_content(),
        "att": [(a.get_filename(), a.get_content_type(), a.get_content()) for a in att],
        "defects": [str(d) for p in m.walk() for d in p.defects]})
print(json.dumps(out))
`
	py := needExecutable(t, "/usr/bin/python3", "python3")
	cmd := exec.Command(py, "-c", script)
	in, _ := json.Marshal(files)
	cmd.Stdin = strings.NewReader(string(in))
	pout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python email: %v", err)
	}
	var parsed []struct {
		To, From, Subject, Type, Text, HTML string
		XCode                               string `json:"x_code"`
		Parts                               []string
		Att                                 [][]any
		Defects                             []string
	}
	if err := json.Unmarshal(pout, &parsed); err != nil || len(parsed) != len(files) {
		t.Fatalf("python output (%v): %s", err, pout)
	}
	seen := map[string]bool{}
	for i, p := range parsed {
		a := got[i]
		if len(a.Rcpts) != 1 {
			t.Errorf("%s: %d envelope recipients, want 1 per message", a.File, len(a.Rcpts))
			continue
		}
		var k int
		fmt.Sscanf(a.Rcpts[0], "k%03d@", &k)
		first, code := fmt.Sprintf("Ann%03d", k), fmt.Sprintf("C-%03d", k)
		seen[a.Rcpts[0]] = true
		wantParts := "multipart/mixed,multipart/alternative,text/plain,text/html,text/csv"
		if p.Type != "multipart/mixed" || strings.Join(p.Parts, ",") != wantParts || len(p.Defects) != 0 ||
			p.Subject != "Hello "+first+", issue 7" || p.XCode != code ||
			!strings.Contains(p.To, a.Rcpts[0]) || !strings.Contains(p.To, fmt.Sprintf("Reader %d", k)) ||
			p.From != "Gannet Weekly for "+first+" <news@src.test>" ||
			strings.ReplaceAll(p.Text, "\r\n", "\n") != "Dear "+first+",\nyour code is "+code+".\n.\n-- Gannet Weekly\n" ||
			!strings.Contains(p.HTML, "<b>"+code+"</b>") ||
			len(p.Att) != 1 || p.Att[0][0] != "codes.csv" || p.Att[0][1] != "text/csv" || p.Att[0][2] != "codes,for,all\n" {
			t.Errorf("message for %s: %+v", a.Rcpts[0], p)
		}
		if a.MailFrom != "news@src.test" {
			t.Errorf("%s: MAIL FROM %q", a.Rcpts[0], a.MailFrom)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct recipients reached the receiver, want %d", len(seen), n)
	}
	recs := g.WaitRecords(recordFilter{Type: "Delivery"}, n, deliveryMax)
	for _, r := range recs {
		if r.Campaign != "kumo-e2e" || r.Sender != "news@src.test" {
			t.Errorf("Delivery record %s", r.Raw)
			break
		}
	}
}

// TestE2EInjectKumoJinja: an inject request whose whole-message template
// uses Jinja statements and filters reaches the receiver expanded per
// recipient; a recipient whose substitution would put CR LF into a header
// fails alone, and a template that does not compile is refused with 422
// and its position.
func TestE2EInjectKumoJinja(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{})
	content := "From: news@src.test\n" +
		"{% if vip %}X-VIP: yes\n{% endif %}" +
		"Subject: {{ title|upper }} for {{ name|default('reader') }}\n" +
		"\n" +
		"{# the body #}Hello {{ name|default('reader') }},\n" +
		"{% for it in items %}{{ loop.index }}. {{ it.name|title }}: {{ it.price }}\n{% endfor %}" +
		"{% set total = items|map(attribute='price')|sum %}Total: {{ total }}\n"
	req := map[string]any{
		"envelope_sender": "news@src.test",
		"campaign":        "kumo-jinja-e2e",
		"substitutions":   map[string]any{"title": "offers", "items": []map[string]any{{"name": "green tea", "price": 3}, {"name": "cake", "price": 4}}},
		"content":         content,
		"recipients": []map[string]any{
			{"email": "j0@" + domain1, "name": "Ann", "substitutions": map[string]any{"vip": true}},
			{"email": "j1@" + domain1},
			{"email": "j2@" + domain1, "substitutions": map[string]any{"title": "x\r\nBcc: victim@" + domain1}},
		},
	}
	body, _ := json.Marshal(req)
	r := adminCurl(t, g, "POST", "/api/inject/v1", string(body)).want(t, "inject", 200)
	var ans struct {
		SuccessCount     int      `json:"success_count"`
		FailCount        int      `json:"fail_count"`
		FailedRecipients []string `json:"failed_recipients"`
	}
	r.decode(t, &ans)
	if ans.SuccessCount != 2 || ans.FailCount != 1 || len(ans.FailedRecipients) != 1 || ans.FailedRecipients[0] != "j2@"+domain1 {
		t.Fatalf("inject answer %s", r.body)
	}
	got := waitArrivals(t, rcv, 2, 2*deliveryMax)
	want := map[string][2]string{
		"j0@" + domain1: {"\r\nX-VIP: yes\r\nSubject: OFFERS for Ann\r\n", "Hello Ann,\r\n1. Green Tea: 3\r\n2. Cake: 4\r\nTotal: 7\r\n"},
		"j1@" + domain1: {"\r\nSubject: OFFERS for reader\r\n", "Hello reader,\r\n1. Green Tea: 3\r\n2. Cake: 4\r\nTotal: 7\r\n"},
	}
	for _, a := range got {
		if len(a.Rcpts) != 1 {
			t.Fatalf("%s: %d envelope recipients", a.File, len(a.Rcpts))
		}
		wa, ok := want[a.Rcpts[0]]
		if !ok {
			t.Errorf("unexpected recipient %s", a.Rcpts[0])
			continue
		}
		head, text, _ := strings.Cut(string(a.Data), "\r\n\r\n")
		if !strings.Contains(head+"\r\n", wa[0]) || text != wa[1] || strings.Contains(string(a.Data), "victim") ||
			strings.Contains(a.Rcpts[0], "j1") && strings.Contains(head, "X-VIP") {
			t.Errorf("message for %s:\n%s", a.Rcpts[0], a.Data)
		}
	}
	req["content"] = "Subject: s\n\nHello\n{% for x in items %}{{ x }}"
	body, _ = json.Marshal(req)
	r = adminCurl(t, g, "POST", "/api/inject/v1", string(body)).want(t, "bad template", 422)
	if !strings.Contains(r.body, "bad template: line 4") || !strings.Contains(r.body, "endfor") {
		t.Errorf("bad template answer %s", r.body)
	}
}

// TestE2EAdminSuspendIDN: a suspension written with U-labels holds mail
// addressed with A-labels, and one written with A-labels holds mail
// addressed with U-labels (SMTPUTF8): one domain, one queue, whatever form
// the operator or the client used.
func TestE2EAdminSuspendIDN(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{Extra: adminExtra})

	// 例子.holdout.test is domainIDN1, 测试.holdout.test is domainIDN2.
	for _, d := range []string{"例子.holdout.test", domainIDN2} {
		if out, errOut, code := runGannetCLI(t, g, "suspend", "-domain", d, "-reason", "idn e2e", "-duration", "10m"); code != 0 {
			t.Fatalf("gannet suspend -domain %s (%d): %s%s", d, code, out, errOut)
		}
	}
	held := []string{"u1@" + domainIDN1, "u2@测试.holdout.test", "u3@例子.holdout.test", "u4@XN--0ZWM56D.Holdout.Test"}
	var msgs []pyMessage
	for _, rcpt := range append(held, "control@"+domain1) {
		msgs = append(msgs, pyMessage{From: senderAddr, To: []string{rcpt}, MailOptions: []string{"SMTPUTF8", "BODY=8BITMIME"},
			Data: simpleMessage(senderAddr, "idn@"+domain1, "idn "+rcpt, "held or not\n")})
	}
	for i, r := range smtplibSend(t, g.SMTPAddr, msgs) {
		if !acceptedRE.MatchString(r.Data) {
			t.Fatalf("%s: replies MAIL %q RCPT %q DATA %q", msgs[i].To[0], r.Mail, r.Rcpt, r.Data)
		}
	}
	// The control message shows delivery works; the others stay held.
	waitArrivals(t, rcv, 1, deliveryMax)
	time.Sleep(3 * time.Second) // retry_interval is 1s: attempts would have come
	if got := countRcpts(t, rcv); got != 1 {
		t.Fatalf("receiver got %d recipients, want only the control one (IDN suspensions did not hold)", got)
	}
	s := summaryOf(t, g)
	if s.Totals.Held != len(held) {
		t.Errorf("held %d, want %d: %+v", s.Totals.Held, len(held), s.Totals)
	}
	perDomain := map[string]int{}
	for _, q := range s.Queues {
		perDomain[q.Domain] += q.Messages
	}
	if perDomain[domainIDN1] != 2 || perDomain[domainIDN2] != 2 || len(perDomain) != 2 {
		t.Errorf("queues by domain %v, want 2 each under %s and %s only", perDomain, domainIDN1, domainIDN2)
	}
	for _, d := range []string{"XN--FSQU00A.holdout.test", "测试.holdout.test"} {
		if out, errOut, code := runGannetCLI(t, g, "resume", "-domain", d); code != 0 || !strings.HasPrefix(out, "resumed ") {
			t.Fatalf("gannet resume -domain %s (%d): %s%s", d, code, out, errOut)
		}
	}
	waitArrivals(t, rcv, 1+len(held), deliveryMax)
}
