package smtpwire

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// RFC 2195 §2's example: tim / tanstaaftanstaaf.
func TestVerifyCRAMMD5(t *testing.T) {
	a := AuthCredentials{Mechanism: "CRAM-MD5", Username: "tim",
		Challenge: "<1896.697170952@postoffice.reston.mci.net>", Digest: "b913a602c7eda7a495b4e6e7334d3890"}
	if !a.VerifyCRAMMD5("tanstaaftanstaaf") {
		t.Error("RFC 2195 example rejected")
	}
	if a.VerifyCRAMMD5("wrong") {
		t.Error("wrong secret accepted")
	}
	a.Digest = "B913A602C7EDA7A495B4E6E7334D3890"
	if !a.VerifyCRAMMD5("tanstaaftanstaaf") {
		t.Error("upper-case digest rejected")
	}
	if (&AuthCredentials{Mechanism: "PLAIN", Digest: a.Digest}).VerifyCRAMMD5("tanstaaftanstaaf") {
		t.Error("verified a PLAIN exchange")
	}
}

// authFuzzConfig offers every mechanism with a fixed CRAM-MD5 challenge.
func authFuzzConfig() *ServerConfig {
	return &ServerConfig{
		Hostname: "mx.gannet.test", MaxBadCommands: -1,
		AuthMechs:     []string{"PLAIN", "LOGIN", "CRAM-MD5"},
		CRAMChallenge: func() string { return "<1896.697170952@mx.gannet.test>" },
	}
}

// feedAll feeds in to s, answering every event that wants a response with
// reply, and returns the AUTH events seen (copied) and the output.
func feedAll(t *testing.T, s *Session, in []byte, reply *Reply) ([]AuthCredentials, string) {
	t.Helper()
	var auths []AuthCredentials
	var out []byte
	for steps := 0; ; steps++ {
		if steps > 10000 {
			t.Fatal("Feed makes no progress")
		}
		n, ev := s.Feed(in)
		in = in[n:]
		if ev.Kind == EventAuth {
			auths = append(auths, *ev.Auth)
		}
		if ev.Kind.WantsResponse() {
			s.Respond(reply)
		}
		out = append(out, s.Output()...)
		s.ConsumeOutput(len(s.Output()))
		if ev.Kind == EventNone || ev.Kind == EventQuit || ev.Kind == EventClose {
			break
		}
	}
	if _, err := checkWellFormed(out); err != nil {
		t.Fatalf("malformed output %q: %v", out, err)
	}
	return auths, string(out)
}

// FuzzAuth checks the SASL decoding of AUTH (RFC 4954, RFC 4616, RFC 2195):
// credentials encoded by a correct client come back exactly, in the initial
// response and after a 334 challenge; arbitrary response bytes never crash
// the session, never yield malformed replies, and yield an AUTH event only
// for well-formed data.
func FuzzAuth(f *testing.F) {
	f.Add(uint8(0), "", "app1", "secret", []byte("AGFwcDEAc2VjcmV0\r\n"))
	f.Add(uint8(1), "", "app1", "secret", []byte("YXBwMQ==\r\nc2VjcmV0\r\n"))
	f.Add(uint8(2), "", "tim", "tanstaaftanstaaf", []byte("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"))
	f.Add(uint8(3), "admin", "u\x00v", "p", []byte("*\r\n"))
	f.Add(uint8(4), "", "", "", []byte("=\r\n!!!!\r\nAGE=\r\n"))
	f.Add(uint8(5), "z", "user name", "pa ss", []byte("YQ\r\nYWJj\r\n"))
	f.Fuzz(func(t *testing.T, sel uint8, authzid, user, pass string, raw []byte) {
		mech := [...]string{"PLAIN", "LOGIN", "CRAM-MD5"}[sel%3]
		initial := sel&4 != 0 && mech != "CRAM-MD5"
		enc := base64.StdEncoding.EncodeToString
		var lines []string
		switch mech {
		case "PLAIN":
			lines = []string{enc([]byte(authzid + "\x00" + user + "\x00" + pass))}
		case "LOGIN":
			lines = []string{enc([]byte(user)), enc([]byte(pass))}
		case "CRAM-MD5":
			m := hmac.New(md5.New, []byte(pass))
			m.Write([]byte(authFuzzConfig().CRAMChallenge()))
			lines = []string{enc([]byte(user + " " + hex.EncodeToString(m.Sum(nil))))}
		}
		in := "EHLO c.example\r\nAUTH " + mech
		if initial {
			in += " " + lines[0]
			lines = lines[1:]
		}
		in += "\r\n"
		for _, l := range lines {
			in += l + "\r\n"
		}
		s := NewSession(authFuzzConfig())
		auths, out := feedAll(t, s, []byte(in), &ReplyAuthFailed)
		valid := user != ""
		switch mech {
		case "PLAIN":
			valid = valid && !strings.Contains(authzid+user+pass, "\x00")
		}
		for _, l := range strings.Split(in, "\r\n") {
			if len(l) > MaxAuthLine-2 {
				valid = false // a line over RFC 4954's limit; refusing it is right
			}
		}
		if valid {
			if len(auths) != 1 {
				t.Fatalf("%s: %d AUTH events for %q, output %q", mech, len(auths), in, out)
			}
			a := auths[0]
			if a.Mechanism != mech || a.Username != user {
				t.Fatalf("%s: got %+v, want user %q", mech, a, user)
			}
			switch mech {
			case "PLAIN":
				if a.Authzid != authzid || a.Password != pass {
					t.Fatalf("PLAIN: got %+v", a)
				}
			case "LOGIN":
				if a.Password != pass {
					t.Fatalf("LOGIN: password %q, want %q", a.Password, pass)
				}
			case "CRAM-MD5":
				if !a.VerifyCRAMMD5(pass) {
					t.Fatalf("CRAM-MD5: digest does not verify: %+v", a)
				}
			}
		} else if len(auths) > 1 {
			t.Fatalf("%s: %d AUTH events for one exchange", mech, len(auths))
		}

		// Arbitrary bytes as the SASL response(s).
		s = NewSession(authFuzzConfig())
		auths, _ = feedAll(t, s, append([]byte("EHLO c.example\r\nAUTH "+mech+"\r\n"), raw...), &ReplyAuthFailed)
		for _, a := range auths {
			switch a.Mechanism {
			case "PLAIN":
				if a.Username == "" || strings.Contains(a.Username+a.Password, "\x00") {
					t.Fatalf("PLAIN event with bad data: %+v", a)
				}
			case "LOGIN":
				if a.Username == "" {
					t.Fatalf("LOGIN event without a user name: %+v", a)
				}
			case "CRAM-MD5":
				if a.Username == "" || len(a.Digest) != 32 {
					t.Fatalf("CRAM-MD5 event with bad data: %+v", a)
				}
				if _, err := hex.DecodeString(a.Digest); err != nil {
					t.Fatalf("CRAM-MD5 digest not hex: %+v", a)
				}
			default:
				t.Fatalf("AUTH event for mechanism %q", a.Mechanism)
			}
		}
	})
}
