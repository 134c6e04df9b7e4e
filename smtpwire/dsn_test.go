package smtpwire

import (
	"strings"
	"testing"
)

func TestXtext(t *testing.T) {
	for _, tt := range []struct{ decoded, encoded string }{
		{"plain", "plain"},
		{"a+b=c d", "a+2Bb+3Dc+20d"},
		{"caf\xc3\xa9", "caf+C3+A9"},
	} {
		if got := string(AppendXtext(nil, tt.decoded)); got != tt.encoded {
			t.Errorf("AppendXtext(%q) = %q, want %q", tt.decoded, got, tt.encoded)
		}
		if got, ok := decodeXtext([]byte(tt.encoded), false); !ok || got != tt.decoded {
			t.Errorf("decodeXtext(%q) = %q %v, want %q", tt.encoded, got, ok, tt.decoded)
		}
	}
	for _, bad := range []string{"a+", "a+4", "a+4g", "a+zz", "a b", "a=b", "a\x7f"} {
		if got, ok := decodeXtext([]byte(bad), false); ok {
			t.Errorf("decodeXtext(%q) = %q, want an error", bad, got)
		}
	}
}

func TestNotifyString(t *testing.T) {
	for s, want := range map[string]string{
		"never": "NEVER", "delay,failure,success": "SUCCESS,FAILURE,DELAY", "FAILURE": "FAILURE",
	} {
		n, ok := parseNotify([]byte(s))
		if !ok || n.String() != want {
			t.Errorf("parseNotify(%q) = %v %v, want %s", s, n, ok, want)
		}
	}
}

// FuzzDSNParams: a NOTIFY, ORCPT or ENVID value that parses is written
// back (as the client side passes it on) to a value that parses to the
// same thing.
func FuzzDSNParams(f *testing.F) {
	for _, s := range []string{"rfc822;a+2Bb@c.example", "utf-8;\xc3\xa9@c.example", "SUCCESS,DELAY", "NEVER", "QQ+3D314", "x-type;+00", "utf-8;a+20b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if n, ok := parseNotify([]byte(v)); ok {
			if m, ok := parseNotify([]byte(n.String())); !ok || m != n {
				t.Fatalf("NOTIFY %q → %q → %v %v", v, n.String(), m, ok)
			}
		}
		if id, ok := decodeXtext([]byte(v), false); ok {
			if back, ok := decodeXtext(AppendXtext(nil, id), false); !ok || back != id {
				t.Fatalf("ENVID %q → %q → %q %v", v, id, back, ok)
			}
		}
		if o, ok := parseORcpt([]byte(v)); ok {
			enc := string(appendORcpt(nil, o))
			param, found := strings.CutPrefix(enc, " ORCPT=")
			if !found {
				t.Fatalf("ORCPT %q written as %q", o, enc)
			}
			if back, ok := parseORcpt([]byte(param)); !ok || back != o {
				t.Fatalf("ORCPT %q → %q → %q → %q %v", v, o, param, back, ok)
			}
		}
	})
}
