package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"gannet/engine/inbound"
	"gannet/feedback"
	"gannet/smtpwire"
)

// recordingSuppressor is a suppression list that remembers what it was
// given; with fail set, Add fails.
type recordingSuppressor struct {
	mu    sync.Mutex
	adds  []string // "tenant|address|source|reason"
	fails bool
}

func (s *recordingSuppressor) Add(tenant, address, reason, source string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails {
		return errors.New("suppression list down")
	}
	s.adds = append(s.adds, tenant+"|"+address+"|"+source+"|"+reason)
	return nil
}

const testFeedbackSecret = "unit-test-feedback-secret-42"

// reportSample reads a real report of the sisimai corpus and, when ref is not
// empty, writes "X-Gannet-Ref: ref" at the top of its returned header
// section, as a report about a message Gannet sent quotes it. CRLF lines.
func reportSample(t *testing.T, name, ref string) []byte {
	t.Helper()
	base := os.Getenv("GANNET_TESTDATA")
	if base == "" {
		base = filepath.Join("..", "..", "shared", "testdata")
	}
	b, err := os.ReadFile(filepath.Join(base, "bounces", "sisimai", "maildir-bsd", name))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("SKIPPING: shared test data missing: %v", err)
	}
	s := string(b)
	if ref != "" {
		i := strings.Index(s, "Content-Type: message/rfc822")
		if i < 0 {
			i = strings.Index(s, "Content-Type: text/rfc822-headers")
		}
		j := strings.Index(s[i:], "\n\n")
		if i < 0 || j < 0 {
			t.Fatalf("%s: no returned message", name)
		}
		at := i + j + 2
		s = s[:at] + feedback.RefHeader + ": " + ref + "\n" + s[at:]
	}
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// readRecords returns the records the engine wrote under dir, after Stop.
func readRecords(t *testing.T, dir string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".zst") {
			d, _ := zstd.NewReader(bytes.NewReader(b))
			b, err = io.ReadAll(d)
			d.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// TestAcceptFeedback feeds real DSNs and ARF reports (sisimai's corpus)
// with references to Accept on a feedback listener and checks the replies,
// the records and what reaches the suppression list: only a matched
// permanent bounce of a hard class ("oob") or a matched complaint
// ("complaint") is suppressed, for the tenant the reference names; a
// forged reference, a soft bounce and an auth-failure report are recorded
// and suppress nothing; a failing list costs the record its "suppressed"
// but not the report; a non-report and a broken report get 550 5.6.0.
func TestAcceptFeedback(t *testing.T) {
	dir := t.TempDir()
	c := quietConfig(dir)
	c.Feedback.Secret = testFeedbackSecret
	sup := &recordingSuppressor{}
	logs := &syncBuffer{}
	e, err := New(c, Options{Suppressor: sup, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	key := feedback.NewKey(testFeedbackSecret)
	good := key.Seal(feedback.Ref{ID: "0mxid00000000000good", Tenant: "acme", Campaign: "spring"})
	forged := feedback.NewKey("another-secret-of-16+").Seal(feedback.Ref{ID: "0mxid00000000000good", Tenant: "acme", Campaign: "spring"})

	send := func(msg []byte, rcpt string) smtpwire.Reply {
		return e.Accept(context.Background(), &inbound.Incoming{
			Listener: "fbl", Peer: netip.MustParseAddrPort("192.0.2.7:2525"), Feedback: true, Body: msg,
			Envelope: &smtpwire.Envelope{Helo: "mx.isp.example", Rcpts: []smtpwire.Path{{Addr: rcpt}}},
		})
	}
	for _, tc := range []struct {
		name, file, ref string
		code            int
		enhanced        string
	}{
		{"hard bounce", "lhost-amazonses-05.eml", good, 250, "2.0.0"},
		{"soft bounce", "lhost-amazonses-17.eml", good, 250, "2.0.0"},
		{"forged bounce", "lhost-amazonses-06.eml", forged, 250, "2.0.0"},
		{"complaint", "arf-14.eml", good, 250, "2.0.0"},
		{"auth-failure report", "arf-18.eml", good, 250, "2.0.0"},
		{"not a report", "rfc3834-01.eml", "", 550, "5.6.0"},
		{"broken report", "rfc3464-04.eml", "", 550, "5.6.0"},
	} {
		r := send(reportSample(t, tc.file, tc.ref), "fbl@fbl.example")
		if r.Code != tc.code || r.Enhanced != tc.enhanced {
			t.Errorf("%s: %d %s %v, want %d %s", tc.name, r.Code, r.Enhanced, r.Lines, tc.code, tc.enhanced)
		}
	}
	sup.fails = true
	send(reportSample(t, "arf-02.eml", good), "fbl@fbl.example")
	var prom bytes.Buffer
	e.metrics.WritePrometheus(&prom)
	for _, line := range []string{
		`gannet_feedback_reports_total{kind="dsn",matched="true"} 2`,
		`gannet_feedback_reports_total{kind="dsn",matched="false"} 1`,
		`gannet_feedback_reports_total{kind="arf",matched="true"} 3`,
	} {
		if !strings.Contains(prom.String(), line+"\n") {
			t.Errorf("metrics lack %s", line)
		}
	}
	e.Stop(context.Background())

	want := []string{
		"acme|bounce@simulator.amazonses.com|oob|5.1.1 550 5.1.1 user unknown",
		"acme|kijitora@y.example.com|complaint|abuse report from Yahoo!-Mail-Feedback/2.0",
	}
	if strings.Join(sup.adds, "\n") != strings.Join(want, "\n") {
		t.Errorf("suppression list got\n%s\nwant\n%s", strings.Join(sup.adds, "\n"), strings.Join(want, "\n"))
	}
	recs := readRecords(t, c.Log.Path)
	// One record per report, in the order sent; the refused ones have none.
	wantRecs := []struct {
		typ, rcpt, extra    string
		matched, suppressed bool
	}{
		{"OOB", "bounce@simulator.amazonses.com", "InvalidRecipient", true, true},
		{"OOB", "kijitora@example.com", "MessageExpired", true, false}, // 4.4.7
		{"OOB", "bounce@simulator.amazonses.com", "forged", false, false},
		{"Feedback", "kijitora@y.example.com", "abuse", true, true},
		{"Feedback", "kijitora@example.com", "auth-failure", true, false},
		{"Feedback", "this-local-part-does-not-exist-on-yahoo@yahoo.com", "abuse", true, false}, // the list failed
	}
	if len(recs) != len(wantRecs) {
		t.Fatalf("%d records, want %d: %v", len(recs), len(wantRecs), recs)
	}
	for i, w := range wantRecs {
		r := recs[i]
		s, _ := r["suppressed"].(bool)
		if r["type"] != w.typ || r["recipient"] != w.rcpt || r["matched"] != w.matched || s != w.suppressed {
			t.Errorf("record %d: %v\nwant %s %s matched=%v suppressed=%v", i, r, w.typ, w.rcpt, w.matched, w.suppressed)
		}
		if w.matched && (r["id"] != "0mxid00000000000good" || r["tenant"] != "acme" || r["campaign"] != "spring" || r["matched_by"] != "header") {
			t.Errorf("record %d: not matched to the reference: %v", i, r)
		}
		if !w.matched && (r["id"] != "" || r["tenant"] != "" || !strings.Contains(r["unmatched_reason"].(string), w.extra)) {
			t.Errorf("record %d: unmatched but names a message, or says not why: %v", i, r)
		}
		if w.matched && w.typ == "OOB" && r["bounce_classification"] != w.extra {
			t.Errorf("record %d: class %v, want %s", i, r["bounce_classification"], w.extra)
		}
		if w.typ == "Feedback" && r["feedback_type"] != w.extra {
			t.Errorf("record %d: feedback_type %v, want %s", i, r["feedback_type"], w.extra)
		}
	}
	if r := recs[0]; r["action"] != "failed" || r["reporting_mta"] != "a27-33.smtp-out.us-west-2.amazonses.com" {
		t.Errorf("hard bounce record: %v", r)
	}
	if !strings.Contains(logs.String(), "suppression list down") {
		t.Errorf("the failing list is not logged:\n%s", logs.String())
	}
}

// TestPrepareAddsRef: with [feedback] secret, each message gets one
// X-Gannet-Ref field naming its id, tenant and campaign — a field the
// client sent is replaced — above the DKIM signatures' reach: they are
// made after it and still verify. Without the secret, no field.
func TestPrepareAddsRef(t *testing.T) {
	e, recs := signingEngine(t)
	e.conf().Feedback.Secret = testFeedbackSecret
	in := "X-Tenant: acme\r\nX-Campaign: spring\r\nX-Gannet-Ref: client-made\r\nFrom: News <news@acme.example>\r\nTo: u@d1.test\r\nSubject: Sale\r\n\r\nHello\r\n"
	p, got := prepareTest(t, e, testArrival(e, in, "", true), "ID7")
	if n := strings.Count(got, feedback.RefHeader+":"); n != 1 || strings.Contains(got, "client-made") {
		t.Fatalf("%d %s fields (the client's kept?):\n%s", n, feedback.RefHeader, got)
	}
	v := got[strings.Index(got, feedback.RefHeader+": ")+len(feedback.RefHeader)+2:]
	v = v[:strings.Index(v, "\r\n")]
	ref, err := feedback.NewKey(testFeedbackSecret).Open(v)
	if err != nil || ref != (feedback.Ref{ID: "ID7", Tenant: "acme", Campaign: "spring"}) {
		t.Errorf("X-Gannet-Ref %q opens to %+v, %v", v, ref, err)
	}
	if ds := verify(t, p.final, recs); len(ds) != 2 {
		t.Errorf("signatures that verify: %v", ds)
	}

	e.conf().Feedback.Secret = ""
	_, got = prepareTest(t, e, testArrival(e, "From: a@src.test\r\n\r\nx\r\n", "", true), "ID8")
	if strings.Contains(got, feedback.RefHeader) {
		t.Errorf("a reference without a secret:\n%s", got)
	}
}

// TestReturnPath: with return_path_domain, the envelope sender is a VERP
// address whose token names the message, its tenant and campaign, and the
// recipient of a one-recipient transaction; the null sender stays null.
func TestReturnPath(t *testing.T) {
	e, _ := policyEngine(t, policyConfig(t))
	if got := e.returnPath("ID1", "acme", "c", "a@src.test", []string{"u@d1.test"}); got != "a@src.test" {
		t.Errorf("without [feedback]: %q", got)
	}
	f := &e.conf().Feedback
	f.Secret, f.ReturnPathDomain, f.ReturnPathPrefix = testFeedbackSecret, "bounces.example", "bounce"
	k := feedback.NewKey(testFeedbackSecret)
	for _, rcpts := range [][]string{{"u@d1.test"}, {"u@d1.test", "v@d1.test"}} {
		rp := e.returnPath("ID1", "acme", "c", "a@src.test", rcpts)
		tok, ok := feedback.VERPToken(rp, "bounce")
		ref, err := k.Open(tok)
		want := feedback.Ref{ID: "ID1", Tenant: "acme", Campaign: "c"}
		if len(rcpts) == 1 {
			want.Recipient = rcpts[0]
		}
		if !ok || err != nil || ref != want || !strings.HasSuffix(rp, "@bounces.example") {
			t.Errorf("return path %q for %v: %+v %v", rp, rcpts, ref, err)
		}
	}
	if got := e.returnPath("ID1", "acme", "c", "", []string{"u@d1.test"}); got != "" {
		t.Errorf("null sender became %q", got)
	}
}
