package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestE2EDrain: `gannet drain` makes the node refuse new mail — swaks gets
// 421 4.3.2, HTTP inject 503 with Retry-After, liveness 503
// {"status":"draining"} — while the message it holds is still delivered
// when its receiver comes up; `gannet drain -off` takes mail again; SIGTERM
// then stops the process with status 0.
func TestE2EDrain(t *testing.T) {
	gannetBinary(t)
	relay := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")) // the receiver starts later
	g := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, RetryInterval: "1s", MaxRetryInterval: "1s",
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", relay), Extra: "\n[server]\ndrain_timeout = \"5s\"\n"})

	rcpt := "held@far.example"
	held := swaksRelay(t, g.SMTPAddr, senderAddr, []string{rcpt}, simpleMessage(senderAddr, rcpt, "held", "Queued before the drain.\n"))
	g.WaitRecords(recordFilter{Type: "TransientFailure", ID: held}, 1, deliveryMax)

	// A session open before the drain.
	open, err := net.DialTimeout("tcp", g.SMTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	open.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(open)
	readReply := func() string {
		var all string
		for {
			l, err := br.ReadString('\n')
			all += l
			if err != nil || len(l) < 4 || l[3] == ' ' {
				return all
			}
		}
	}
	readReply()
	fmt.Fprintf(open, "EHLO open.e2e.test\r\n")
	readReply()

	out, errOut, code := runGannetCLI(t, g, "drain")
	if code != 0 || !strings.Contains(out, "draining") {
		t.Fatalf("gannet drain (%d): %s%s", code, out, errOut)
	}
	if out, _, _ := runGannetCLI(t, g, "drain", "-status"); !strings.Contains(out, "draining: new mail is refused") {
		t.Errorf("gannet drain -status: %s", out)
	}

	// The open session is told 421 4.3.2 (at once, being idle; else at its
	// next MAIL).
	fmt.Fprintf(open, "MAIL FROM:<%s>\r\n", senderAddr)
	if r := readReply(); !strings.HasPrefix(r, "421 4.3.2") {
		t.Errorf("an open session while draining: %q, want 421 4.3.2", r)
	}
	// SMTP: 421 4.3.2 at connect.
	swaks := needExecutable(t, "swaks", "swaks")
	tr, _ := runClient(t, nil, swaks, "--server", g.SMTPAddr, "--from", senderAddr, "--to", "new@far.example", "--timeout", "20")
	if !strings.Contains(tr, "421 4.3.2") {
		t.Errorf("swaks while draining did not get 421 4.3.2:\n%s", tr)
	}
	// HTTP: inject 503 with Retry-After; liveness 503 draining.
	body, _ := json.Marshal(map[string]any{"from": senderAddr, "to": []string{"new@far.example"}, "subject": "s", "text": "t"})
	resp, err := http.Post("http://"+g.HTTPAddr+"/v1/message", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("inject while draining: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if st, live := liveness(t, g); st != 503 || live != "draining" {
		t.Errorf("liveness while draining: %d %q", st, live)
	}

	// Delivery goes on: the held message arrives once its receiver is up.
	sink := startSmtpSink(t, relay)
	g.WaitRecords(recordFilter{Type: "Delivery", ID: held}, 1, deliveryMax)
	if findArrival(waitArrivals(t, sink, 1, deliveryMax), rcpt) == nil {
		t.Errorf("%s did not arrive", rcpt)
	}

	out, errOut, code = runGannetCLI(t, g, "drain", "-off")
	if code != 0 || !strings.Contains(out, "not draining") {
		t.Fatalf("gannet drain -off (%d): %s%s", code, out, errOut)
	}
	if st, live := liveness(t, g); st != 200 || live != "ok" {
		t.Errorf("liveness after drain -off: %d %q", st, live)
	}
	after := "after@far.example"
	id := swaksRelay(t, g.SMTPAddr, senderAddr, []string{after}, simpleMessage(senderAddr, after, "after", "Taken again.\n"))
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)

	// SIGTERM: a clean stop, status 0, within drain_timeout.
	start := time.Now()
	g.Stop()
	if g.p.err != nil {
		t.Errorf("gannet exited with %v after SIGTERM, want status 0", g.p.err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the stop took %v", d)
	}
}

// liveness returns the status and the "status" field of GET
// /api/check-liveness/v1.
func liveness(t *testing.T, g *gannet) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + g.HTTPAddr + "/api/check-liveness/v1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Status string `json:"status"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &v)
	return resp.StatusCode, v.Status
}
