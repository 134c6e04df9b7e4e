package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/resolver/dnstest"
)

// TLS reporting (RFC 8460) end to end with the gannet binary: an
// in-process DNS server for rpt.test with MTA-STS and _smtp._tls TXT
// records; one HTTPS server on 127.18.63.1:443 that serves the MTA-STS
// policies and takes TLS-RPT POSTs (certificate from a CA made here,
// trusted through [tls] ca_file); aiosmtpd MX hosts with a good
// certificate and with a certificate for another name; and a mailbox MX
// for the mailto: reports.
const (
	e2eRptHTTPSIP = "127.18.63.1" // mta-sts.*.rpt.test, tlsrpt.rpt.test
	e2eRptGoodIP  = "127.18.63.2" // mx.good.rpt.test
	e2eRptWrongIP = "127.18.63.3" // mx.wrong.rpt.test: certificate for other.rpt.test
	e2eRptMboxIP  = "127.18.63.4" // mx.mbox.rpt.test: the mailbox of mailto: reports
)

func e2eRptZone() string {
	return fmt.Sprintf(`$ORIGIN rpt.test.
$TTL 1
@                 IN SOA ns hostmaster 1 3600 600 86400 1
mx.good           IN A   %[1]s
mx.wrong          IN A   %[2]s
mx.mbox           IN A   %[3]s
tlsrpt            IN A   %[4]s
mta-sts.good      IN A   %[4]s
mta-sts.bad       IN A   %[4]s
good              IN MX  10 mx.good
nofetch           IN MX  10 mx.good
badcert           IN MX  10 mx.good
mta-sts.nofetch   IN A   %[4]s
mta-sts.badcert   IN A   %[4]s
_mta-sts.nofetch  IN TXT "v=STSv1; id=1;"
_mta-sts.badcert  IN TXT "v=STSv1; id=1;"
_smtp._tls.nofetch IN TXT "v=TLSRPTv1; rua=https://tlsrpt.rpt.test/report"
_smtp._tls.badcert IN TXT "v=TLSRPTv1; rua=https://tlsrpt.rpt.test/report"
bad               IN MX  10 mx.wrong
mbox              IN MX  10 mx.mbox
_mta-sts.good     IN TXT "v=STSv1; id=1;"
_mta-sts.bad      IN TXT "v=STSv1; id=1;"
_smtp._tls.good   IN TXT "v=TLSRPTv1; rua=https://tlsrpt.rpt.test/report"
_smtp._tls.bad    IN TXT "v=TLSRPTv1; rua=mailto:reports@mbox.rpt.test,https://tlsrpt.rpt.test/report"
`, e2eRptGoodIP, e2eRptWrongIP, e2eRptMboxIP, e2eRptHTTPSIP)
}

// rptReceiver serves MTA-STS policies (by Host) and takes reports.
type rptReceiver struct {
	policies *e2ePolicyServer
	mu       sync.Mutex
	posts    [][]byte // gzip'd bodies
	bad      []string // what was wrong with a POST
}

func (r *rptReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if strings.HasPrefix(req.Host, "mta-sts.") {
		r.policies.ServeHTTP(w, req)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || req.URL.Path != "/report" || req.Header.Get("Content-Type") != "application/tlsrpt+gzip" {
		r.bad = append(r.bad, fmt.Sprintf("%s %s %q", req.Method, req.URL.Path, req.Header.Get("Content-Type")))
		http.Error(w, "bad report", http.StatusBadRequest)
		return
	}
	r.posts = append(r.posts, body)
}

// rptJSON is what the tests read of a report.
type rptJSON struct {
	OrganizationName string `json:"organization-name"`
	ContactInfo      string `json:"contact-info"`
	ReportID         string `json:"report-id"`
	DateRange        struct {
		Start string `json:"start-datetime"`
		End   string `json:"end-datetime"`
	} `json:"date-range"`
	Policies []struct {
		Policy struct {
			Type   string   `json:"policy-type"`
			String []string `json:"policy-string"`
			Domain string   `json:"policy-domain"`
			MX     []string `json:"mx-host"`
		} `json:"policy"`
		Summary struct {
			Successful int `json:"total-successful-session-count"`
			Failed     int `json:"total-failure-session-count"`
		} `json:"summary"`
		Details []struct {
			ResultType  string `json:"result-type"`
			SendingIP   string `json:"sending-mta-ip"`
			ReceivingMX string `json:"receiving-mx-hostname"`
			ReceivingIP string `json:"receiving-ip"`
			Count       int    `json:"failed-session-count"`
			Reason      string `json:"failure-reason-code"`
		} `json:"failure-details"`
	} `json:"policies"`
}

// TestE2ETLSRPT: mail to a domain whose enforced MTA-STS policy names a
// good MX host and to one whose testing policy names an MX host with a
// wrong-name certificate, one connection per message; then "send now"
// through the admin API: the https: address gets each domain's gzip'd
// JSON report, valid against RFC 8460's schema, whose counts are what
// happened (2 successful sessions; 2 certificate-host-mismatch failures
// with the addresses involved; a session to a domain whose policy is not
// found, and one to a domain whose policy server's certificate is for
// other names: sts-policy-fetch-error and sts-webpki-invalid); the mailto: address gets a DKIM-signed
// multipart/report message per §5.3 through Gannet's own queue whose
// attachment is the same report; the counts and the reports' state
// survive a restart and show in `gannet tlsrpt list|show`.
func TestE2ETLSRPT(t *testing.T) {
	bin := gannetBinary(t)
	py := needPythonModule(t, "jsonschema", "python3-jsonschema")
	ca := newE2ECA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600)

	ps := &e2ePolicyServer{policies: map[string]string{}, fetches: map[string]int{}}
	ps.set("good.rpt.test", "version: STSv1\nmode: enforce\nmx: mx.good.rpt.test\nmax_age: 86400\n")
	ps.set("bad.rpt.test", "version: STSv1\nmode: testing\nmx: mx.wrong.rpt.test\nmax_age: 86400\n")
	rr := &rptReceiver{policies: ps}
	ln, err := net.Listen("tcp", e2eRptHTTPSIP+":443")
	if err != nil {
		t.Fatalf("https server: %v", err)
	}
	// No policy for nofetch.rpt.test (404); no name for mta-sts.badcert.rpt.test.
	_, _, pair := ca.issue(t, "mta-sts.good.rpt.test", "mta-sts.bad.rpt.test", "mta-sts.nofetch.rpt.test", "tlsrpt.rpt.test")
	hs := &http.Server{Handler: rr, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}}, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })

	dns := dnstest.NewServer(t, e2eRptZone())
	port := freePort(t, false, e2eRptGoodIP, e2eRptWrongIP, e2eRptMboxIP)
	goodCert, goodKey, _ := ca.issue(t, "mx.good.rpt.test")
	wrongCert, wrongKey, _ := ca.issue(t, "other.rpt.test")
	good := startAiosmtpd(t, hostPort(e2eRptGoodIP, port), aioOptions{TLSCert: goodCert, TLSKey: goodKey})
	wrong := startAiosmtpd(t, hostPort(e2eRptWrongIP, port), aioOptions{TLSCert: wrongCert, TLSKey: wrongKey})
	mbox := startAiosmtpd(t, hostPort(e2eRptMboxIP, port), aioOptions{})

	keys := t.TempDir()
	out, err := exec.Command(bin, "dkim-keygen", "-domain", "relay.e2e.test", "-selector", "rpt", "-algo", "ed25519", "-out", keys).CombinedOutput()
	if err != nil {
		t.Fatalf("dkim-keygen: %v\n%s", err, out)
	}
	keyFiles, _ := filepath.Glob(filepath.Join(keys, "*.key"))
	if len(keyFiles) == 0 {
		keyFiles, _ = filepath.Glob(filepath.Join(keys, "*"))
	}
	var keyFile string
	for _, f := range keyFiles {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("PRIVATE KEY")) {
			keyFile = f
		}
	}
	if keyFile == "" {
		t.Fatalf("no private key in %v", keyFiles)
	}
	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, CAFile: caFile,
		TLSExtra: `tlsrpt_organization = "Gannet e2e"
tlsrpt_contact = "postmaster@relay.e2e.test"
tlsrpt_sender = "tlsrpt@relay.e2e.test"`,
		Extra: fmt.Sprintf(`
[[dkim]]
domain = "relay.e2e.test"
selector = "rpt"
key_file = %q
`, keyFile)})
	// One connection per message, so that sessions are messages.
	setMaxPerConn(t, g)

	var ids []string
	for i, rcpt := range []string{"a@good.rpt.test", "b@bad.rpt.test", "c@good.rpt.test", "d@bad.rpt.test", "e@nofetch.rpt.test", "f@badcert.rpt.test"} {
		ids = append(ids, dlvSend(t, g, rcpt, ""))
		g.WaitRecords(recordFilter{Type: "Delivery", ID: ids[i]}, 1, deliveryMax)
	}
	if n := countRcpts(t, good); n != 4 {
		t.Errorf("mx.good.rpt.test got %d recipients, want 4", n)
	}
	if n := countRcpts(t, wrong); n != 2 {
		t.Errorf("mx.wrong.rpt.test got %d recipients, want 2 (testing mode delivers)", n)
	}

	day := time.Now().UTC().Format("2006-01-02")
	adminCurl(t, g, "POST", "/api/admin/tls-reports/v1", `{"day":"`+day+`"}`).want(t, "send now", 200)

	// The https: receiver: one report per domain.
	rr.mu.Lock()
	posts, bad := rr.posts, rr.bad
	rr.mu.Unlock()
	if len(bad) > 0 || len(posts) != 4 {
		t.Fatalf("https receiver: %d reports, bad requests %q", len(posts), bad)
	}
	schema, _ := filepath.Abs("../engine/tlsrpt/testdata/report.schema.json")
	reports := map[string]rptJSON{}
	rawByDomain := map[string][]byte{}
	for _, p := range posts {
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			t.Fatalf("POST body is not gzip: %v", err)
		}
		j, _ := io.ReadAll(zr)
		validateReportSchema(t, py, schema, j)
		var r rptJSON
		if err := json.Unmarshal(j, &r); err != nil || len(r.Policies) != 1 {
			t.Fatalf("report %s: %v", j, err)
		}
		reports[r.Policies[0].Policy.Domain] = r
		rawByDomain[r.Policies[0].Policy.Domain] = j
		t.Logf("report for %s:\n%s", r.Policies[0].Policy.Domain, j)
	}
	gr, br := reports["good.rpt.test"], reports["bad.rpt.test"]
	if gr.OrganizationName != "Gannet e2e" || gr.ContactInfo != "postmaster@relay.e2e.test" || !strings.HasPrefix(gr.DateRange.Start, day+"T00:00:00") {
		t.Errorf("good.rpt.test report header: %+v", gr)
	}
	if p := gr.Policies[0]; p.Policy.Type != "sts" || p.Summary.Successful != 2 || p.Summary.Failed != 0 ||
		strings.Join(p.Policy.MX, ",") != "mx.good.rpt.test" || !contains(p.Policy.String, "mode: enforce") {
		t.Errorf("good.rpt.test policy: %+v", p)
	}
	if p := br.Policies[0]; p.Policy.Type != "sts" || p.Summary.Successful != 0 || p.Summary.Failed != 2 || len(p.Details) != 1 ||
		p.Details[0].ResultType != "certificate-host-mismatch" || p.Details[0].ReceivingMX != "mx.wrong.rpt.test" ||
		p.Details[0].ReceivingIP != e2eRptWrongIP || net.ParseIP(p.Details[0].SendingIP) == nil || p.Details[0].Count != 2 ||
		!contains(p.Policy.String, "mode: testing") {
		t.Errorf("bad.rpt.test policy: %+v", p)
	}

	// Policies that could not be fetched: the session is a failure of the
	// domain's "sts" policy, of the fetch's result type.
	for d, want := range map[string]string{"nofetch.rpt.test": "sts-policy-fetch-error", "badcert.rpt.test": "sts-webpki-invalid"} {
		r := reports[d]
		if len(r.Policies) != 1 {
			t.Errorf("%s: no report", d)
			continue
		}
		if p := r.Policies[0]; p.Policy.Type != "sts" || p.Summary.Successful != 0 || p.Summary.Failed != 1 || len(p.Details) != 1 ||
			p.Details[0].ResultType != want || p.Details[0].ReceivingMX != "mx.good.rpt.test" || p.Details[0].Reason == "" {
			t.Errorf("%s policy: %+v, want one %s", d, p, want)
		}
	}

	// The mailto: report: delivered through the queue to mx.mbox.
	deadline := time.Now().Add(deliveryMax)
	for countRcpts(t, mbox) == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	arr := mbox.arrivals(t)
	if len(arr) != 1 || arr[0].MailFrom != "tlsrpt@relay.e2e.test" || len(arr[0].Rcpts) != 1 || arr[0].Rcpts[0] != "reports@mbox.rpt.test" {
		t.Fatalf("mailbox: %+v", arr)
	}
	checkReportMail(t, py, arr[0].Data, br.ReportID, rawByDomain["bad.rpt.test"])

	// Metrics: the two failures under their policy and result type.
	if v := scrapeMetrics(t, g.HTTPAddr).get(t, `gannet_tls_failures_total{policy="sts",result_type="certificate-host-mismatch"}`); v != 2 {
		t.Errorf("gannet_tls_failures_total{policy=sts,result_type=certificate-host-mismatch} = %v, want 2", v)
	}

	// A restart keeps the counts and the reports' state.
	g.Stop()
	g.Restart()
	var detail struct {
		Counts struct {
			Policies []struct {
				Successful int `json:"successful"`
			} `json:"policies"`
		} `json:"counts"`
		Report struct {
			Status   string `json:"status"`
			ReportID string `json:"report_id"`
		} `json:"report"`
	}
	adminCurl(t, g, "GET", "/api/admin/tls-reports/v1?domain=good.rpt.test&day="+day, "").want(t, "show", 200).decode(t, &detail)
	if len(detail.Counts.Policies) != 1 || detail.Counts.Policies[0].Successful != 2 || detail.Report.Status != "sent" || detail.Report.ReportID != gr.ReportID {
		t.Errorf("after restart: %+v", detail)
	}
	cli := func(args ...string) string {
		out, err := exec.Command(bin, append([]string{"tlsrpt"}, append(args, "-api", "http://"+g.HTTPAddr)...)...).CombinedOutput()
		if err != nil {
			t.Errorf("gannet tlsrpt %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := cli("list")
	if !strings.Contains(list, "good.rpt.test") || !strings.Contains(list, "https://tlsrpt.rpt.test/report") || !strings.Contains(list, "sent") ||
		strings.Contains(list, "  mbox.rpt.test ") { // §5.3: the session carrying a report is not counted

		t.Errorf("gannet tlsrpt list:\n%s", list)
	}
	show := cli("show", "bad.rpt.test", "-day", day)
	if !strings.Contains(show, "certificate-host-mismatch") || !strings.Contains(show, "mx.wrong.rpt.test") || !strings.Contains(show, "mailto:reports@mbox.rpt.test: sent") {
		t.Errorf("gannet tlsrpt show:\n%s", show)
	}
	t.Logf("gannet tlsrpt list:\n%s\ngannet tlsrpt show bad.rpt.test:\n%s", list, show)
}

// setMaxPerConn sets max_deliveries_per_connection = 1 by a reload.
func setMaxPerConn(t *testing.T, g *gannet) {
	t.Helper()
	b, err := os.ReadFile(g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "[delivery]\n", "[delivery]\nmax_deliveries_per_connection = 1\n", 1)
	if err := os.WriteFile(g.ConfigPath, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	g.Stop()
	g.Restart()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validateReportSchema checks a report with Python's jsonschema.
func validateReportSchema(t *testing.T, py, schema string, j []byte) {
	t.Helper()
	cmd := exec.Command(py, "-c", `import json,sys,jsonschema
jsonschema.validate(json.load(sys.stdin), json.load(open(sys.argv[1])))`, schema)
	cmd.Stdin = bytes.NewReader(j)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("report does not validate: %v\n%s\n%s", err, out, j)
	}
}

// checkReportMail checks the report message with Python's email package
// (RFC 8460 §5.3) and that its attachment is the report posted.
func checkReportMail(t *testing.T, py string, msg []byte, reportID string, wantJSON []byte) {
	t.Helper()
	script := `import email, email.policy, gzip, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
out = {
  "subject": " ".join(str(m["Subject"]).split()),
  "domain": str(m["TLS-Report-Domain"]),
  "submitter": str(m["TLS-Report-Submitter"]),
  "dkim": str(m.get("DKIM-Signature", "")),
  "tls_required": str(m.get("TLS-Required", "")),
  "type": m.get_content_type(),
  "report_type": m.get_param("report-type"),
  "parts": [],
}
for p in m.iter_parts():
  d = {"type": p.get_content_type(), "filename": p.get_filename()}
  if p.get_content_type() == "application/tlsrpt+gzip":
    d["json"] = json.loads(gzip.decompress(p.get_payload(decode=True)))
  out["parts"].append(d)
print(json.dumps(out))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python email: %v\n%s\n%s", err, out, msg)
	}
	var got struct {
		Subject, Domain, Submitter, DKIM, Type string
		ReportType                             string `json:"report_type"`
		TLSRequired                            string `json:"tls_required"`
		Parts                                  []struct {
			Type, Filename string
			JSON           json.RawMessage
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Subject != "Report Domain: bad.rpt.test Submitter: relay.e2e.test Report-ID: <"+reportID+">" ||
		got.Domain != "bad.rpt.test" || got.Submitter != "relay.e2e.test" || got.Type != "multipart/report" || got.ReportType != "tlsrpt" ||
		got.TLSRequired != "No" {
		t.Errorf("report message: %+v", got)
	}
	if !strings.Contains(got.DKIM, "d=relay.e2e.test") {
		t.Errorf("report message not DKIM-signed for relay.e2e.test: %q", got.DKIM)
	}
	if len(got.Parts) != 2 || got.Parts[0].Type != "text/plain" || got.Parts[1].Type != "application/tlsrpt+gzip" ||
		!strings.HasPrefix(got.Parts[1].Filename, "relay.e2e.test!bad.rpt.test!") || !strings.HasSuffix(got.Parts[1].Filename, ".json.gz") {
		t.Fatalf("report message parts: %+v", got.Parts)
	}
	var a, b any
	json.Unmarshal(got.Parts[1].JSON, &a)
	json.Unmarshal(wantJSON, &b)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("mailed report differs from the posted one:\n%s\n%s", got.Parts[1].JSON, wantJSON)
	}
}
