package dkim

import "testing"

func TestHeaderFromDomain(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"From: Joe <joe@Sender.Example>\r\n\r\nx", "sender.example"},
		{"Subject: x\r\nfrom:\r\n joe@a.example (Joe)\r\n\r\n", "a.example"},
		{"From: =?utf-8?q?J=C3=B6rg?= <j\xc3\xb6rg@b.example>\r\n\r\n", "b.example"},
		{"From: \"a@evil.example\" <x@c.example>\r\n\r\n", "c.example"},
		{"From: a@one.example, b@two.example\r\n\r\n", "one.example"},
		{"From: broken <<x@d.example>\r\n\r\n", "d.example"},
		{"From: nobody\r\n\r\n", ""},
		{"To: x@e.example\r\n\r\nFrom: x@f.example\r\n", ""},
	} {
		if got := HeaderFromDomain([]byte(tc.msg)); got != tc.want {
			t.Errorf("HeaderFromDomain(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}
