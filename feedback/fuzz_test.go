package feedback

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSamples seeds f with a few real reports of the shared corpus whose
// names start with prefix (when the corpus is there), and with the
// hand-made ones.
func addSamples(f *testing.F, names []string, extra ...string) {
	dir := filepath.Join("..", "..", "shared", "testdata", "bounces", "sisimai", "maildir-bsd")
	if d := os.Getenv("GANNET_TESTDATA"); d != "" {
		dir = filepath.Join(d, "bounces", "sisimai", "maildir-bsd")
	}
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			f.Add(b)
		}
	}
	for _, e := range extra {
		f.Add([]byte(e))
	}
}

const dsnSeed = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
	"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n" +
	"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.d1.test\r\n\r\n" +
	"Final-Recipient: rfc822; a@d1.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no\r\n\r\n" +
	"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nX-Gannet-Ref: AQ\r\n\r\n--b--\r\n"

const arfSeed = "Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n" +
	"--b\nContent-Type: message/feedback-report\nContent-Transfer-Encoding: base64\n\n" +
	"RmVlZGJhY2stVHlwZTogYWJ1c2UKVXNlci1BZ2VudDogeC8xClZlcnNpb246IDEK\n" +
	"--b\nContent-Type: message/rfc822\n\nX-Gannet-Ref: x\nTo: a@d1.test\n\nbody\n"

// checkReport holds for every report Parse returns: its bounds and its kind.
func checkReport(t *testing.T, r *Report, err error) {
	if err != nil {
		return
	}
	if r.Kind != DSN && r.Kind != ARF {
		t.Fatalf("report of kind %d", r.Kind)
	}
	if len(r.Recipients) > MaxRecipients || len(r.OriginalRcptTo) > MaxRecipients {
		t.Fatalf("%d recipients", len(r.Recipients))
	}
	for _, rc := range r.Recipients {
		if len(rc.Diagnostic) > maxFieldLen || rc.Code != 0 && (rc.Code < 200 || rc.Code > 599) {
			t.Fatalf("recipient %+v", rc)
		}
	}
}

// FuzzParseDSN feeds DSN-shaped input to Parse: it must not panic, must
// stay within its bounds and must return a report or an error.
func FuzzParseDSN(f *testing.F) {
	addSamples(f, []string{"rfc3464-01.eml", "lhost-postfix-01.eml", "lhost-exim-29.eml", "lhost-office365-09.eml", "rfc3464-04.eml"},
		dsnSeed, strings.ReplaceAll(dsnSeed, "\r\n", "\n"), strings.Replace(dsnSeed, "--b--", "", 1))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := Parse(msg)
		checkReport(t, r, err)
	})
}

// FuzzParseARF is FuzzParseDSN with feedback reports as seeds.
func FuzzParseARF(f *testing.F) {
	addSamples(f, []string{"arf-01.eml", "arf-14.eml", "arf-16.eml", "arf-18.eml", "arf-22.eml"}, arfSeed)
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := Parse(msg)
		checkReport(t, r, err)
	})
}

// FuzzOpen: any string opens to an error or to a Ref that seals back to a
// token opening to the same Ref.
func FuzzOpen(f *testing.F) {
	k := NewKey("k")
	f.Add(k.Seal(Ref{ID: "id", Tenant: "t", Campaign: "c", Recipient: "r@d.test"}))
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, tok string) {
		r, err := k.Open(tok)
		if err != nil {
			return
		}
		if r2, err := k.Open(k.Seal(r)); err != nil || r2 != r {
			t.Fatalf("reseal of %+v: %+v %v", r, r2, err)
		}
	})
}
