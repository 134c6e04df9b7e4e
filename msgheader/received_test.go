package msgheader

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestReceived(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("", -3*3600))
	v4 := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		name string
		t    Trace
		want string
	}{
		{"smtp", Trace{Helo: "app.example.test", Peer: v4, By: "relay.example.test", With: "ESMTP", ID: "0abc", For: "u@example.test", Time: now},
			"Received: from app.example.test ([192.0.2.7]) by relay.example.test with ESMTP\r\n" +
				"\tid 0abc for <u@example.test>; Wed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"http over IPv6 gets the IPv6 tag", Trace{Peer: netip.MustParseAddr("::1"), By: "relay.example.test", With: "HTTP", ID: "0abc", Time: now},
			"Received: from unknown ([IPv6:::1]) by relay.example.test with HTTP id 0abc;\r\n" +
				"\tWed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"v4-mapped IPv6 is written as IPv4", Trace{Helo: "h", Peer: netip.MustParseAddr("::ffff:192.0.2.7"), By: "r", With: "ESMTP", Time: now},
			"Received: from h ([192.0.2.7]) by r with ESMTP;\r\n\tWed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"no peer", Trace{By: "r", With: "HTTP", Time: now},
			"Received: from unknown ([unknown]) by r with HTTP;\r\n\tWed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"tls comment", Trace{Helo: "a.test", Peer: v4, By: "r.test", TLS: "TLSv1.3 TLS_AES_128_GCM_SHA256", With: "ESMTPS", ID: "1", Time: now},
			"Received: from a.test ([192.0.2.7]) by r.test (TLSv1.3 TLS_AES_128_GCM_SHA256)\r\n" +
				"\twith ESMTPS id 1; Wed, 04 Mar 2026 05:06:07 -0300\r\n"},
		{"hostile words", Trace{Helo: "evil)\r\nX-Injected: yes", Peer: v4, By: "r", TLS: "x) (y\r\n", With: "SMTP", For: "a>b@c", Time: now},
			"Received: from evil___X-Injected:_yes ([192.0.2.7]) by r (x_ _y__) with SMTP\r\n" +
				"\tfor <a_b@c>; Wed, 04 Mar 2026 05:06:07 -0300\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(tc.t.AppendReceived(nil))
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			for _, line := range strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n") {
				if len(line) > receivedFoldWidth {
					t.Errorf("line over %d: %q", receivedFoldWidth, line)
				}
			}
		})
	}
}

// BenchmarkReceived measures the Received field every accepted message
// gets; the only allocation is the field's own buffer.
func BenchmarkReceived(b *testing.B) {
	t := Trace{Helo: "app.example.test", Peer: netip.MustParseAddr("192.0.2.7"), By: "relay.example.test", With: "ESMTP",
		ID: "0mxdg90hr000", For: "user@example.test", Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		t.AppendReceived(make([]byte, 0, 256))
	}
}
