package inbound

import (
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gannet/smtpwire"
)

func TestReceivedHeader(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("", -3*3600))
	base := Incoming{
		Hostname: "relay.example.test",
		Peer:     netip.MustParseAddrPort("192.0.2.7:40000"),
		Envelope: &smtpwire.Envelope{Helo: "app.example.test", ESMTP: true, Rcpts: []smtpwire.Path{{Addr: "u@example.test"}}},
	}
	tests := []struct {
		name string
		mod  func(in *Incoming)
		want string
	}{
		{"plain single rcpt", func(in *Incoming) {},
			"Received: from app.example.test ([192.0.2.7]) by relay.example.test with ESMTP\r\n" +
				"\tid 0abc for <u@example.test>; Wed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"two rcpts omit for", func(in *Incoming) {
			in.Envelope = &smtpwire.Envelope{Helo: "app.example.test", ESMTP: true, Rcpts: []smtpwire.Path{{Addr: "a@example.test"}, {Addr: "b@example.test"}}}
		},
			"Received: from app.example.test ([192.0.2.7]) by relay.example.test with ESMTP\r\n" +
				"\tid 0abc; Wed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"tls and auth, IPv6", func(in *Incoming) {
			in.Peer = netip.MustParseAddrPort("[2001:db8::5]:25")
			in.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}
			in.AuthUser = "app1"
			in.Envelope = &smtpwire.Envelope{Helo: "app.example.test", ESMTP: true, TLS: true, AuthUser: "app1", Rcpts: []smtpwire.Path{{Addr: "u@example.test"}}}
		},
			"Received: from app.example.test ([IPv6:2001:db8::5]) by relay.example.test\r\n" +
				"\t(TLSv1.3 TLS_AES_128_GCM_SHA256) with ESMTPSA id 0abc for <u@example.test>;\r\n" +
				"\tWed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"hostile helo", func(in *Incoming) {
			in.Envelope = &smtpwire.Envelope{Helo: "evil)\r\nX-Injected: yes"}
		},
			"Received: from evil___X-Injected:_yes ([192.0.2.7]) by relay.example.test\r\n" +
				"\twith SMTP id 0abc; Wed, 04 Mar 2026 05:06:07 -0300\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.mod(&in)
			got := string(in.ReceivedHeader("0abc", now))
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			for _, line := range strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n") {
				if len(line) > 78 {
					t.Errorf("line over 78: %q", line)
				}
			}
		})
	}
}

func BenchmarkReceivedHeader(b *testing.B) {
	in := Incoming{
		Hostname: "relay.example.test",
		Peer:     netip.MustParseAddrPort("192.0.2.7:40000"),
		Envelope: &smtpwire.Envelope{Helo: "app.example.test", Rcpts: []smtpwire.Path{{Addr: "u@example.test"}}},
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = in.ReceivedHeader("0abcdefghij", now)
	}
}

// FuzzReceivedHeader feeds hostile HELO names and recipients: the header
// must stay one field (every line break is CRLF followed by a tab) and keep
// its comment parentheses balanced.
func FuzzReceivedHeader(f *testing.F) {
	f.Add("app.example.test", "u@example.test", "0abc")
	f.Add("evil)\r\nX-Injected: yes", "a@b", "id")
	f.Add("(((", "\"quoted; local\"@example.test", "")
	f.Add(strings.Repeat("x", 300), strings.Repeat("y", 200)+"@example.test", "0123456789")
	f.Add("\xc3\xa9.example", "\xe2\x98\x83@example.test", "\x00\r")
	f.Fuzz(func(t *testing.T, helo, rcpt, id string) {
		in := Incoming{
			Hostname: "relay.example.test",
			Peer:     netip.MustParseAddrPort("192.0.2.7:40000"),
			Envelope: &smtpwire.Envelope{Helo: helo, ESMTP: true, Rcpts: []smtpwire.Path{{Addr: rcpt}}},
		}
		h := string(in.ReceivedHeader(id, time.Unix(0, 0).UTC()))
		if !strings.HasPrefix(h, "Received: ") || !strings.HasSuffix(h, "\r\n") {
			t.Fatalf("malformed %q", h)
		}
		inner := strings.TrimSuffix(h, "\r\n")
		if strings.Count(inner, "\r") != strings.Count(inner, "\r\n\t") || strings.Count(inner, "\n") != strings.Count(inner, "\r\n\t") {
			t.Fatalf("stray line break in %q", h)
		}
		if strings.Count(h, "(") != strings.Count(h, ")") {
			t.Fatalf("unbalanced comment in %q", h)
		}
	})
}
