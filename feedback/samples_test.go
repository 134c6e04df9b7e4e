package feedback

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testdataDir finds the shared third-party test data (see
// /work/shared/testdata/README.md), read in place: $GANNET_TESTDATA, else
// the shared folder next to the repository. Without it the test fails when
// CI=true and is skipped loudly otherwise.
func testdataDir(t testing.TB, sub string) string {
	t.Helper()
	base := os.Getenv("GANNET_TESTDATA")
	if base == "" {
		base = filepath.Join("..", "..", "shared", "testdata")
	}
	dir := filepath.Join(base, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data missing: %v (set GANNET_TESTDATA)", err)
		}
		t.Skipf("SKIPPING: shared test data missing: %v (set GANNET_TESTDATA)", err)
	}
	return dir
}

// expectedRow is one line of sisimai's expected.tsv.
type expectedRow struct {
	file                string
	index               int // 1-based recipient number
	status, reason      string
	feedbackType, other string
}

func readExpected(t *testing.T, dir string) map[string][]expectedRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]expectedRow{}
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, "\t")
		if i == 0 || len(f) < 7 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		rows[f[0]] = append(rows[f[0]], expectedRow{file: f[0], index: n, status: f[2], reason: f[4], feedbackType: f[6]})
	}
	if len(rows) < 500 {
		t.Fatalf("expected.tsv: %d files, the reader is broken", len(rows))
	}
	return rows
}

var statusRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// TestSisimaiSamples parses every real bounce and feedback report of the
// sisimai corpus (612 messages from 70 kinds of MTA and provider) and
// checks the fields against sisimai's own expected results:
//
//   - every message with a message/feedback-report part is an ARF report
//     with the Feedback-Type sisimai names, one Original-Rcpt-To per
//     recipient sisimai counts when the report has them;
//   - every message with a message/delivery-status part is a DSN with a
//     Reporting-MTA, and each recipient sisimai lists is there, with a
//     Final-Recipient and the Status sisimai gives — except where sisimai
//     reads a more precise status out of the diagnostic text than the
//     Status field says (those must still be of the same class, or be
//     listed below with what the field says);
//   - the other messages (vendor text bounces, auto-replies, the two
//     non-bounces) are ErrNotReport, never an error of another kind.
func TestSisimaiSamples(t *testing.T) {
	dir := testdataDir(t, filepath.Join("bounces", "sisimai"))
	expected := readExpected(t, dir)
	files, err := filepath.Glob(filepath.Join(dir, "maildir-*", "*.eml"))
	if err != nil || len(files) < 600 {
		t.Fatalf("%d samples (%v)", len(files), err)
	}
	// Status fields that disagree with sisimai in class: sisimai's value
	// is its reading of the text (pseudo-codes like 5.0.947 "expired"), or
	// the field is missing. Each maps to what the field says.
	classDiffers := map[string]string{
		"lhost-sendmail-56.eml": "5.5.0", "lhost-opensmtpd-16.eml": "4.4.7", "lhost-opensmtpd-12.eml": "4.0.0",
		"lhost-opensmtpd-06.eml": "4.4.7", "lhost-opensmtpd-15.eml": "4.4.7", "rhost-franceptt-10.eml": "4.5.0",
		"lhost-mcafee-01.eml": "", "lhost-mcafee-02.eml": "", "lhost-mcafee-03.eml": "", "lhost-mcafee-04.eml": "",
		"lhost-mcafee-05.eml": "", "lhost-sendgrid-03.eml": "",
	}
	// DSNs with fewer recipient groups than sisimai counts: two reports in
	// one message (rfc3464-28, rhost-cox-01, rhost-aol-03: Parse reads the
	// first), or a delivery-status part without a recipient group.
	fewer := []string{"rfc3464-28.eml", "rhost-cox-01.eml", "rhost-aol-03.eml",
		"lhost-googleworkspace-01.eml", "lhost-x3-05.eml", "lhost-postfix-64.eml"}

	// multipart/report messages whose parts are gone: no delimiter line
	// in the body. They are ErrMalformed; every other failure is
	// ErrNotReport.
	broken := []string{"rfc3464-04.eml", "rfc3464-06.eml", "rhost-franceptt-07.eml", "rhost-google-02.eml",
		"lhost-messagingserver-03.eml"}
	// Reporters that leave out the mandatory Reporting-MTA (RFC 3464 §2.2.2).
	noReportingMTA := []string{"mcafee", "sendgrid", "surfcontrol", "googleworkspace"}
	var dsns, arfs, none, rcpts, exact int
	for _, path := range files {
		name := filepath.Base(path)
		msg, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(msg)
		hasDS := strings.Contains(strings.ToLower(s), "message/delivery-status")
		hasFR := strings.Contains(strings.ToLower(s), "message/feedback-report")
		r, err := Parse(msg)
		switch {
		case err != nil:
			if errors.Is(err, ErrMalformed) != slices.Contains(broken, name) || !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotReport) {
				t.Errorf("%s: %v", name, err)
			}
			if hasFR {
				t.Errorf("%s has a message/feedback-report part: %v", name, err)
			}
			none++
			continue
		case r.Kind == ARF:
			arfs++
			if !hasFR {
				t.Errorf("%s: ARF without a feedback-report part", name)
			}
			rows := expected[name]
			if len(rows) == 0 {
				continue // not in sisimai's tables (arf-22..24)
			}
			if r.FeedbackType != rows[0].feedbackType {
				t.Errorf("%s: Feedback-Type %q, sisimai says %q", name, r.FeedbackType, rows[0].feedbackType)
			}
			if len(r.OriginalRcptTo) > 1 && len(r.OriginalRcptTo) != len(rows) {
				t.Errorf("%s: %d Original-Rcpt-To, sisimai counts %d recipients", name, len(r.OriginalRcptTo), len(rows))
			}
			if r.UserAgent == "" || r.Version == "" {
				t.Errorf("%s: User-Agent %q, Version %q: both are required (RFC 5965 §3.1)", name, r.UserAgent, r.Version)
			}
		case r.Kind == DSN:
			dsns++
			if !hasDS {
				t.Errorf("%s: DSN without a delivery-status part", name)
			}
			if r.ReportingMTA == "" && !slices.Contains(noReportingMTA, strings.SplitN(name, "-", 3)[1]) {
				t.Errorf("%s: no Reporting-MTA", name)
			}
			for _, row := range expected[name] {
				if row.reason == "feedback" || row.reason == "vacation" {
					continue
				}
				if row.index > len(r.Recipients) {
					if !slices.Contains(fewer, name) {
						t.Errorf("%s: recipient %d missing: parsed %d", name, row.index, len(r.Recipients))
					}
					continue
				}
				rcpts++
				rc := r.Recipients[row.index-1]
				if !strings.Contains(rc.FinalRecipient, "@") && !strings.Contains(rc.FinalRecipient, "/") {
					t.Errorf("%s #%d: Final-Recipient %q", name, row.index, rc.FinalRecipient)
				}
				if want, ok := classDiffers[name]; ok {
					if rc.Status != want {
						t.Errorf("%s #%d: Status %q, the field says %q", name, row.index, rc.Status, want)
					}
					continue
				}
				if rc.Status == row.status {
					exact++
				} else if !statusRE.MatchString(rc.Status) || rc.Status[0] != row.status[0] {
					t.Errorf("%s #%d: Status %q, sisimai says %q (%s)", name, row.index, rc.Status, row.status, row.reason)
				}
			}
		}
	}
	t.Logf("%d samples: %d DSNs, %d ARF reports, %d not reports; %d recipients checked, Status exactly sisimai's for %d",
		len(files), dsns, arfs, none, rcpts, exact)
	// The corpus holds 322 RFC 3464 DSNs and 13 ARF reports; sisimai
	// reads 280 statuses exactly as the Status field has them.
	if dsns < 320 || arfs != 13 || exact < 280 {
		t.Errorf("parsed %d DSNs (want ≥ 320), %d ARF (want 13), %d exact statuses (want ≥ 280)", dsns, arfs, exact)
	}
}

// TestSampleFields checks every field of a few samples, read by hand from
// the files.
func TestSampleFields(t *testing.T) {
	dir := testdataDir(t, filepath.Join("bounces", "sisimai", "maildir-bsd"))
	parse := func(name string) *Report {
		t.Helper()
		msg, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}

	r := parse("lhost-postfix-01.eml")
	if r.Kind != DSN || r.ReportingMTA != "p351355.pool.example.ne.jp" || len(r.Recipients) != 1 {
		t.Fatalf("lhost-postfix-01: %+v", r)
	}
	if rc := r.Recipients[0]; rc.FinalRecipient != "r@p351355.pool.example.ne.jp" || rc.Action != "failed" ||
		rc.Status != "5.1.1" || rc.DiagnosticType != "x-unix" || !strings.HasPrefix(rc.Diagnostic, `procmail: Couldn't create "/var/spool/mail/neko"`) ||
		rc.Code != 0 || !rc.Permanent() {
		t.Errorf("lhost-postfix-01 recipient: %+v", rc)
	}

	r = parse("lhost-amazonses-05.eml")
	if rc := r.Recipients[0]; r.ReportingMTA != "a27-33.smtp-out.us-west-2.amazonses.com" ||
		rc.FinalRecipient != "bounce@simulator.amazonses.com" || rc.Status != "5.1.1" || rc.Code != 550 ||
		rc.Diagnostic != "550 5.1.1 user unknown" || rc.DiagnosticType != "smtp" || len(r.OriginalHeaders) == 0 {
		t.Errorf("lhost-amazonses-05: %+v %+v", r, rc)
	}

	r = parse("lhost-amazonses-17.eml")
	if rc := r.Recipients[0]; rc.Status != "4.4.7" || rc.Action != "failed" || rc.Permanent() {
		t.Errorf("lhost-amazonses-17 (4.4.7, expired): %+v, Permanent %v", rc, rc.Permanent())
	}

	r = parse("arf-14.eml")
	if r.Kind != ARF || r.FeedbackType != "abuse" || !slices.Equal(r.OriginalRcptTo, []string{"kijitora@y.example.com"}) ||
		len(r.OriginalHeaders) == 0 {
		t.Errorf("arf-14: %+v", r)
	}
	r = parse("arf-01.eml") // its last part has no closing delimiter
	if r.Kind != ARF || r.SourceIP != "192.0.2.89" || r.UserAgent != "SMP-FBL" || r.Version != "1.0" ||
		!slices.Equal(r.ReportedDomain, []string{"example.ed.jp"}) || !strings.Contains(string(r.OriginalHeaders), "Subject: Kijitora cat family") {
		t.Errorf("arf-01: %+v", r)
	}
	r = parse("arf-18.eml")
	if r.FeedbackType != "auth-failure" {
		t.Errorf("arf-18: Feedback-Type %q, want auth-failure (RFC 6591)", r.FeedbackType)
	}
}
