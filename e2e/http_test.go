package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2EHTTPInject injects a message with curl through POST /v1/message and
// checks it arrives at the MX host as a MIME message that Python's email
// package reads back to the same parts, and that /metrics counts it.
func TestE2EHTTPInject(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort("127.0.0.2", w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{})
	curl := needExecutable(t, "curl", "curl")

	req := `{"from":"app@example.test","to":["user1@d1.test"],"subject":"Grüße from HTTP",` +
		`"text":"plain part\n.dot line\n","html":"<p>html part</p>","campaign":"spring"}`
	out, err := exec.Command(curl, "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
		"--data-binary", req, "http://"+g.HTTPAddr+"/v1/message").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if got := lines[len(lines)-1]; got != "202" {
		t.Fatalf("HTTP status %s, body %s", got, out)
	}
	var ans struct {
		ID         string `json:"id"`
		Recipients int    `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(strings.Join(lines[:len(lines)-1], "\n")), &ans); err != nil || ans.ID == "" || ans.Recipients != 1 {
		t.Fatalf("answer %q: %v", out, err)
	}

	got := waitArrivals(t, rcv, 1, deliveryMax)
	msg := got[0].Data
	py := exec.Command("/usr/bin/python3", "-c", `
import sys, email, email.policy, json
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
print(json.dumps({"subject": str(m["subject"]), "type": m.get_content_type(),
  "text": m.get_body(("plain",)).get_content(), "html": m.get_body(("html",)).get_content(),
  "defects": [str(d) for p in m.walk() for d in p.defects]}))`)
	py.Stdin = strings.NewReader(string(msg))
	pout, err := py.Output()
	if err != nil {
		t.Fatalf("python email: %v", err)
	}
	var parsed struct {
		Subject, Type, Text, HTML string
		Defects                   []string
	}
	if err := json.Unmarshal(pout, &parsed); err != nil {
		t.Fatalf("%v: %s", err, pout)
	}
	if parsed.Subject != "Grüße from HTTP" || parsed.Type != "multipart/alternative" ||
		strings.ReplaceAll(parsed.Text, "\r\n", "\n") != "plain part\n.dot line\n" || !strings.Contains(parsed.HTML, "<p>html part</p>") || len(parsed.Defects) > 0 {
		t.Fatalf("parsed message %+v\n%s", parsed, msg)
	}
	recs := g.WaitRecords(recordFilter{Type: "Delivery", ID: ans.ID}, 1, 10*time.Second)
	if recs[0].Campaign != "spring" {
		t.Errorf("campaign %q in Delivery record", recs[0].Campaign)
	}

	resp, err := http.Get("http://" + g.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `gannet_messages_received_total{listener="http"} 1`) {
		t.Errorf("metrics do not count the HTTP message:\n%s", body)
	}
}
