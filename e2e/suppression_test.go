package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The suppression list and erasure end to end: a hard bounce from
// bench/smtpsink suppresses its recipient, real clients (swaks, Python
// smtplib, curl) are refused per recipient, mode drop skips with Suppressed
// records, tenants stay apart, the CLI imports and exports, and gannet
// erase removes queued mail to and from an address.

const (
	globexKey    = "globex-key-e2e-0123456789"
	suppressUser = "app1"
	suppressPass = "secret1-e2e"
)

// suppressionExtra: the admin tenants and keys, a second tenant with its
// own key, and an SMTP account of tenant acme.
var suppressionExtra = adminExtra + `
[[tenant]]
name = "globex"

[[api_key]]
key = "` + globexKey + `"
tenant = "globex"

[[smtp_user]]
name = "` + suppressUser + `"
password = "` + suppressPass + `"
tenant = "acme"
`

// rcptReplies returns the server's replies to RCPT in a swaks transcript.
func rcptReplies(transcript string) []string {
	var out []string
	lines := strings.Split(transcript, "\n")
	for i, l := range lines {
		if (strings.HasPrefix(l, " -> RCPT TO") || strings.HasPrefix(l, " ~> RCPT TO")) && i+1 < len(lines) {
			for _, r := range lines[i+1:] {
				if len(r) > 4 && r[0] == '<' {
					out = append(out, strings.TrimLeft(strings.TrimRight(r[1:], "\r"), "-~* "))
					break
				}
			}
		}
	}
	return out
}

// TestE2ESuppressionRefuse: a 550 5.1.1 from bench/smtpsink adds the
// recipient to its tenant's list; the next message of that tenant to it is
// refused per recipient over HTTP (both inject APIs) and SMTP (swaks with
// the tenant's AUTH account: 550 5.7.1 at RCPT, the other recipient
// delivered); another tenant's mail to it still goes; a global entry
// refuses everyone's (smtplib from a relay host); a tenant's API key sees
// and changes its own list only.
func TestE2ESuppressionRefuse(t *testing.T) {
	w := newRelayWorld(t)
	sink := startGoSink(t, hostPort(mxIP1, w.port), "rcpt~gone@:550:1:5.1.1 no such user here")
	g := w.gannet(t, gannetConfig{Extra: suppressionExtra, TLSMode: "opportunistic-insecure"})
	gone := "gone@" + domain1

	// 1. The hard bounce suppresses gone@ for acme.
	id := injectSimple(t, g, gone, "acme", "news", "first")
	g.WaitRecords(recordFilter{Type: "Bounce", ID: id}, 1, deliveryMax)
	var list struct {
		Entries []struct{ Tenant, Address, Reason, Source string }
	}
	waitFor(t, deliveryMax, "the bounce's suppression entry", func() (bool, string) {
		r := adminCurl(t, g, "GET", "/api/admin/suppression/v1?tenant=acme", "").want(t, "list acme", 200)
		r.decode(t, &list)
		return len(list.Entries) == 1, r.body
	})
	if e := list.Entries[0]; e.Address != gone || e.Source != "bounce" || !strings.Contains(e.Reason, "5.1.1") {
		t.Errorf("entry %+v", e)
	}
	out, errOut, code := runGannetCLI(t, g, "suppress", "list", "-tenant", "acme")
	if code != 0 || !strings.Contains(out, gone) || !strings.Contains(out, "bounce") {
		t.Errorf("gannet suppress list -tenant acme (%d):\n%s%s", code, out, errOut)
	}

	// 2. HTTP: /v1/message refuses gone@ and takes the other recipient;
	// KumoMTA's inject reports it in failed_recipients.
	ok1 := "ok1@" + domain1
	r := adminCurl(t, g, "POST", "/v1/message", fmt.Sprintf(`{"from":"app@src.test","to":[%q,%q],"subject":"s","text":"x\n","tenant":"acme"}`, gone, ok1)).
		want(t, "inject with a suppressed recipient", 202)
	var ans struct {
		ID               string
		Recipients       int
		FailedRecipients []string `json:"failed_recipients"`
		Errors           []string
	}
	r.decode(t, &ans)
	if ans.Recipients != 1 || len(ans.FailedRecipients) != 1 || ans.FailedRecipients[0] != gone || !strings.Contains(ans.Errors[0], "550 5.7.1") {
		t.Errorf("/v1/message answer %s", r.body)
	}
	r = adminCurl(t, g, "POST", "/v1/message", fmt.Sprintf(`{"from":"app@src.test","to":%q,"subject":"s","text":"x\n","tenant":"acme"}`, gone)).
		want(t, "inject to a suppressed recipient only", 422)
	if !strings.Contains(r.body, `"failed_recipients":["`+gone+`"]`) {
		t.Errorf("422 answer %s", r.body)
	}
	r = adminCurl(t, g, "POST", "/api/inject/v1", fmt.Sprintf(`{"envelope_sender":"app@src.test","recipients":[{"email":%q},{"email":"ok2@%s"}],"content":"Subject: k\r\n\r\nk\r\n","tenant":"acme"}`, gone, domain1)).
		want(t, "kumo inject", 200)
	if !strings.Contains(r.body, `"success_count":1`) || !strings.Contains(r.body, `"failed_recipients":["`+gone+`"]`) {
		t.Errorf("kumo answer %s", r.body)
	}

	// 3. SMTP with acme's account: 550 5.7.1 for gone@, 250 for ok3@.
	ok3 := "ok3@" + domain1
	msg := simpleMessage(senderAddr, ok3, "smtp", "refused in part\n")
	f := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(f, msg[:len(msg)-2], 0o600)
	tr, _ := runClient(t, nil, needExecutable(t, "swaks", "swaks"), "--server", g.SMTPAddr, "--from", senderAddr,
		"--to", gone+","+ok3, "--helo", "swaks.e2e.test", "--data", "@"+f, "--tls",
		"--auth", "PLAIN", "--auth-user", suppressUser, "--auth-password", suppressPass, "--timeout", "60")
	rr := rcptReplies(tr)
	if len(rr) != 2 || !strings.HasPrefix(rr[0], "550 5.7.1") || !strings.HasPrefix(rr[1], "250") {
		t.Fatalf("RCPT replies %q; transcript:\n%s", rr, tr)
	}
	smtpID := acceptedID(t, swaksFinalReply(tr))
	g.WaitRecords(recordFilter{Type: "Delivery", ID: smtpID, Recipient: ok3}, 1, deliveryMax)

	// 4. Tenant isolation: globex's mail to gone@ is not refused (it goes,
	// and bounces at the sink).
	gid := injectSimple(t, g, gone, "globex", "", "globex's")
	g.WaitRecords(recordFilter{Type: "Bounce", ID: gid}, 1, deliveryMax)

	// 5. A global entry refuses everyone's mail: smtplib from a relay host.
	out, errOut, code = runGannetCLI(t, g, "suppress", "add", "blocked@"+strings.ToUpper(domain1), "-reason", "legal hold")
	if code != 0 || !strings.Contains(out, "suppressed blocked@"+domain1+" for the global list") {
		t.Fatalf("suppress add (%d): %s%s", code, out, errOut)
	}
	res := smtplibSend(t, g.SMTPAddr, []pyMessage{{From: senderAddr, To: []string{"Blocked@" + domain1, "ok4@" + domain1},
		Data: simpleMessage(senderAddr, "ok4@"+domain1, "py", "py\n")}})
	if len(res[0].Rcpt) != 2 || !strings.HasPrefix(res[0].Rcpt[0], "550 5.7.1") || !strings.HasPrefix(res[0].Rcpt[1], "250") || !strings.HasPrefix(res[0].Data, "250") {
		t.Errorf("smtplib replies %+v", res[0])
	}
	pyID := acceptedID(t, res[0].Data)
	g.WaitRecords(recordFilter{Type: "Delivery", ID: pyID}, 1, deliveryMax)

	// Nothing suppressed reached the sink; what was not suppressed did.
	got := waitArrivals(t, sink, 4, deliveryMax)
	for _, a := range got {
		for _, rc := range a.Rcpts {
			if strings.EqualFold(rc, "blocked@"+domain1) {
				t.Errorf("a suppressed recipient reached the sink: %+v", a.Rcpts)
			}
		}
	}
	refused := selectRecords(g.Records(), recordFilter{Type: "Suppressed"})
	if len(refused) < 5 {
		t.Errorf("%d Suppressed records, want 5 (2 /v1/message, 1 kumo, 1 SMTP, 1 smtplib):\n%s", len(refused), summarize(refused))
	}
	m := scrapeMetrics(t, g.HTTPAddr)
	if v := m.values[`gannet_suppressed_total{mode="refuse"}`]; v < 5 {
		t.Errorf(`gannet_suppressed_total{mode="refuse"} = %v, want 5`, v)
	}
	if v := m.values["gannet_suppression_entries"]; v != 3 { // acme gone@, globex gone@, global blocked@
		t.Errorf("gannet_suppression_entries = %v, want 3", v)
	}

	// 6. Tenant keys: their own list only.
	bearer := func(k string) []string { return []string{"-H", "Authorization: Bearer " + k} }
	r = adminCurl(t, g, "GET", "/api/admin/suppression/v1", "", bearer(acmeKey)...).want(t, "acme lists", 200)
	if !strings.Contains(r.body, `"tenant":"acme"`) || strings.Contains(r.body, "globex") || strings.Contains(r.body, "blocked@") {
		t.Errorf("acme's key sees %s", r.body)
	}
	adminCurl(t, g, "GET", "/api/admin/suppression/v1?tenant=acme", "", bearer(globexKey)...).want(t, "globex lists acme's", 403)
	adminCurl(t, g, "GET", "/api/admin/suppression/v1?global=true", "", bearer(globexKey)...).want(t, "globex lists the global list", 403)
	adminCurl(t, g, "DELETE", "/api/admin/suppression/v1", fmt.Sprintf(`{"tenant":"acme","address":%q}`, gone), bearer(globexKey)...).
		want(t, "globex removes acme's entry", 403)
	adminCurl(t, g, "GET", "/api/admin/suppression/v1/export?tenant=acme", "", bearer(globexKey)...).want(t, "globex exports acme's", 403)
	adminCurl(t, g, "POST", "/api/admin/suppression/v1", `{"address":"not an address"}`).want(t, "bad address", 422)
	r = adminCurl(t, g, "DELETE", "/api/admin/suppression/v1", fmt.Sprintf(`{"address":%q}`, gone), bearer(acmeKey)...).want(t, "acme removes its entry", 200)
	if strings.TrimSpace(r.body) != `{"removed":true}` {
		t.Errorf("remove answer %s", r.body)
	}
	// Removed: acme's mail to gone@ is taken again.
	adminCurl(t, g, "POST", "/v1/message", fmt.Sprintf(`{"from":"app@src.test","to":%q,"subject":"s","text":"x\n","tenant":"acme"}`, gone)).
		want(t, "inject after removal", 202)
}

// TestE2ESuppressionDrop: in mode drop, mail to a suppressed address is
// taken (250 with an id) and the recipient skipped with a Suppressed
// record; the other recipient is delivered, and a message whose only
// recipient is suppressed delivers nothing.
func TestE2ESuppressionDrop(t *testing.T) {
	w := newRelayWorld(t)
	sink := startGoSink(t, hostPort(mxIP1, w.port))
	g := w.gannet(t, gannetConfig{Extra: "\n[suppression]\nmode = \"drop\"\n"})
	if _, errOut, code := runGannetCLI(t, g, "suppress", "add", "quiet@"+domain1, "-reason", "asked"); code != 0 {
		t.Fatalf("suppress add: %s", errOut)
	}
	both := swaksRelay(t, g.SMTPAddr, senderAddr, []string{"quiet@" + domain1, "loud@" + domain1},
		simpleMessage(senderAddr, "loud@"+domain1, "drop", "two\n"))
	only := swaksRelay(t, g.SMTPAddr, senderAddr, []string{"Quiet@" + domain1},
		simpleMessage(senderAddr, "quiet@"+domain1, "drop", "one\n"))
	g.WaitRecords(recordFilter{Type: "Delivery", ID: both, Recipient: "loud@" + domain1}, 1, deliveryMax)
	for _, id := range []string{both, only} {
		recs := g.WaitRecords(recordFilter{Type: "Suppressed", ID: id}, 1, deliveryMax)
		if !strings.Contains(recs[0].Response.Content, "asked") {
			t.Errorf("Suppressed record %s", recs[0].Raw)
		}
	}
	// The one-recipient message was never queued: no Reception, no attempt.
	if recs := selectRecords(g.Records(), recordFilter{ID: only}); len(recs) != 1 {
		t.Errorf("records of the dropped message: %s", summarize(recs))
	}
	got := sink.arrivals(t)
	if len(got) != 1 || len(got[0].Rcpts) != 1 || got[0].Rcpts[0] != "loud@"+domain1 {
		t.Errorf("arrivals %+v", got)
	}
	if v := scrapeMetrics(t, g.HTTPAddr).values[`gannet_suppressed_total{mode="drop"}`]; v != 2 {
		t.Errorf(`gannet_suppressed_total{mode="drop"} = %v, want 2`, v)
	}
}

// TestE2ESuppressionImportExport: gannet suppress import streams a CSV
// file (header, tenant and reason columns, a bad line) and export gives
// the same entries back.
func TestE2ESuppressionImportExport(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{Extra: suppressionExtra})
	var in strings.Builder
	in.WriteString("address,tenant,reason\n")
	want := map[string]bool{}
	for i := range 2000 {
		tenant := []string{"", "acme", "globex"}[i%3]
		fmt.Fprintf(&in, "user%d@Import.test,%s,\"list, %d\"\n", i, tenant, i)
		want[fmt.Sprintf("user%d@import.test,%s,\"list, %d\"", i, tenant, i)] = true
	}
	in.WriteString("no-at-sign\n")
	file := filepath.Join(t.TempDir(), "in.csv")
	os.WriteFile(file, []byte(in.String()), 0o600)
	out, errOut, code := runGannetCLI(t, g, "suppress", "import", file)
	if code != 0 || !strings.HasPrefix(out, "imported 2000 entries from 2002 lines; 1 lines refused") || !strings.Contains(out, "line 2002:") {
		t.Fatalf("import (%d): %s%s", code, out, errOut)
	}
	exp := filepath.Join(t.TempDir(), "out.csv")
	if _, errOut, code := runGannetCLI(t, g, "suppress", "export", "-o", exp); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	data, _ := os.ReadFile(exp)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if lines[0] != "address,tenant,reason,source,created,expires" || len(lines) != 2001 {
		t.Fatalf("export: %d lines, header %q", len(lines), lines[0])
	}
	for _, l := range lines[1:] {
		i := strings.Index(l, ",import,")
		if i < 0 || !want[l[:i]] {
			t.Errorf("exported line %q not imported", l)
		}
	}
	// One tenant's export, with its key: its entries only.
	r := adminCurl(t, g, "GET", "/api/admin/suppression/v1/export", "", "-H", "Authorization: Bearer "+acmeKey).want(t, "acme export", 200)
	if n := strings.Count(r.body, ",acme,"); n != 667 || strings.Count(r.body, "\n") != 668 {
		t.Errorf("acme's export: %d acme lines, %d lines", n, strings.Count(r.body, "\n"))
	}
}

// TestE2EErase: with domain1 suspended, gannet erase removes the queued
// mail to and from an address — a message to it alone, a message from
// it, and the address only of a message to it and another — leaves the
// rest queued, puts it on the global list, names the log files that
// mention it, and writes an AdminErase record with its SHA-256 only. Once
// resumed, only the others' mail arrives.
func TestE2EErase(t *testing.T) {
	w := newRelayWorld(t)
	sink := startGoSink(t, hostPort(mxIP1, w.port))
	g := w.gannet(t, gannetConfig{Extra: adminExtra})
	if out, errOut, code := runGannetCLI(t, g, "suspend", "-domain", domain1, "-duration", "0"); code != 0 {
		t.Fatalf("suspend (%d): %s%s", code, out, errOut)
	}
	victim := "Victim@" + domain1
	inject := func(from string, to ...string) string {
		req, _ := json.Marshal(map[string]any{"from": from, "to": to, "subject": "erase", "text": "x\n", "tenant": "acme"})
		var a struct{ ID string }
		adminCurl(t, g, "POST", "/v1/message", string(req)).want(t, "inject", 202).decode(t, &a)
		return a.ID
	}
	toVictim := inject("app@src.test", victim)
	toBoth := inject("app@src.test", "victim@"+domain1, "other@"+domain1)
	fromVictim := inject("victim@"+domain1, "other2@"+domain1)
	unrelated := inject("app@src.test", "keep@"+domain1)
	waitFor(t, deliveryMax, "4 suspended messages", func() (bool, string) {
		out, _, _ := runGannetCLI(t, g, "queue", "list", "-state", "suspended")
		return strings.Contains(out, "4 message(s) shown of 4 matching"), out
	})

	out, errOut, code := runGannetCLI(t, g, "erase", "VICTIM@d1.test")
	if code != 0 {
		t.Fatalf("erase (%d): %s%s", code, out, errOut)
	}
	sum := sha256.Sum256([]byte("victim@" + domain1))
	hash := hex.EncodeToString(sum[:])
	for _, want := range []string{"address sha256: " + hash, "queued: 3 messages (3 recipients) removed", "dead letters: 0 purged",
		"suppressed: on the global suppression list", "log files mentioning it (1):"} {
		if !strings.Contains(out, want) {
			t.Errorf("erase output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runGannetCLI(t, g, "queue", "list")
	if !strings.Contains(out, "2 message(s) shown of 2 matching") || !strings.Contains(out, toBoth) || !strings.Contains(out, unrelated) {
		t.Errorf("queue after the erasure:\n%s", out)
	}
	erased := g.WaitRecords(recordFilter{Type: "AdminErase"}, 1, deliveryMax)
	if rc := erased[0].Recipients(); len(rc) != 1 || rc[0] != "sha256:"+hash || strings.Contains(strings.ToLower(erased[0].Raw), "victim@") {
		t.Errorf("AdminErase record %s", erased[0].Raw)
	}
	for _, id := range []string{toVictim, toBoth, fromVictim} {
		for _, r := range g.WaitRecords(recordFilter{Type: "AdminDelete", ID: id}, 1, deliveryMax) {
			if strings.Contains(strings.ToLower(r.Raw), "victim@") {
				t.Errorf("AdminDelete record names the address: %s", r.Raw)
			}
		}
	}
	out, _, _ = runGannetCLI(t, g, "suppress", "list", "-global")
	if !strings.Contains(out, "victim@"+domain1) || !strings.Contains(out, "erase") {
		t.Errorf("global list:\n%s", out)
	}

	if out, errOut, code := runGannetCLI(t, g, "resume", "-domain", domain1); code != 0 {
		t.Fatalf("resume (%d): %s%s", code, out, errOut)
	}
	got := waitArrivals(t, sink, 2, deliveryMax)
	var rcpts []string
	for _, a := range got {
		rcpts = append(rcpts, a.Rcpts...)
	}
	sort.Strings(rcpts)
	if fmt.Sprint(rcpts) != fmt.Sprintf("[keep@%s other@%s]", domain1, domain1) {
		t.Errorf("delivered to %v, want keep@ and other@ only", rcpts)
	}
	adminCurl(t, g, "POST", "/api/admin/erase/v1", `{"address":"x@y.test"}`, "-H", "Authorization: Bearer "+acmeKey).want(t, "erase by a tenant key", 403)
	adminCurl(t, g, "POST", "/api/admin/erase/v1", `{"address":"nobody"}`).want(t, "erase a non-address", 422)
}
