package engine

import (
	"strings"
	"testing"
	"time"

	"gannet/engine/config"
)

var policyTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 3600))

func policyConfig(t testing.TB) *config.Config {
	t.Helper()
	c := config.Default()
	c.Tenants = []config.Tenant{
		{Name: "acme", ListUnsubscribe: "https://acme.example/u/{id}"},
		{Name: "mailonly", ListUnsubscribe: "mailto:unsub@acme.example?subject={id}"},
	}
	return c
}

func TestHeaderEdits(t *testing.T) {
	c := policyConfig(t)
	const full = "From: a@acme.example\r\nDate: Sun, 1 Mar 2026 10:00:00 +0000\r\nMessage-ID: <x@acme.example>\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name, tenant, campaign, in, want string
		noAdd                            bool
	}{
		{name: "complete message untouched", in: full, want: full},
		{name: "Date and Message-ID added before the empty line",
			in:   "From: a@acme.example\r\nSubject: x\r\n\r\nbody\r\n",
			want: "From: a@acme.example\r\nSubject: x\r\nDate: Sun, 01 Mar 2026 12:00:00 +0100\r\nMessage-ID: <ID1@relay.test>\r\n\r\nbody\r\n"},
		{name: "header only, last line without CRLF",
			in:   "From: a@acme.example\r\nDate: x",
			want: "From: a@acme.example\r\nDate: x\r\nMessage-ID: <ID1@relay.test>\r\n"},
		{name: "empty message", in: "",
			want: "Date: Sun, 01 Mar 2026 12:00:00 +0100\r\nMessage-ID: <ID1@relay.test>\r\n"},
		{name: "bulk mail of a tenant with list_unsubscribe", tenant: "acme", campaign: "spring", in: full,
			want: strings.Replace(full, "\r\n\r\n", "\r\nList-Unsubscribe: <https://acme.example/u/ID1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n", 1)},
		{name: "mailto only: no one-click", tenant: "mailonly", campaign: "spring", in: full,
			want: strings.Replace(full, "\r\n\r\n", "\r\nList-Unsubscribe: <mailto:unsub@acme.example?subject=ID1>\r\n\r\n", 1)},
		{name: "no campaign: not bulk", tenant: "acme", in: full, want: full},
		{name: "unknown tenant", tenant: "nobody", campaign: "spring", in: full, want: full},
		{name: "sender's own List-Unsubscribe kept", tenant: "acme", campaign: "spring",
			in:   "list-unsubscribe: <mailto:x@acme.example>\r\n" + full,
			want: "list-unsubscribe: <mailto:x@acme.example>\r\n" + full},
		{name: "add_missing_headers off", noAdd: true, in: "From: a@acme.example\r\n\r\nb\r\n", want: "From: a@acme.example\r\n\r\nb\r\n"},
		{name: "folded headers and bare LF empty line",
			in:   "From: a@acme.example\r\nSubject: one\r\n two\r\nDate: x\r\n\nbody",
			want: "From: a@acme.example\r\nSubject: one\r\n two\r\nDate: x\r\nMessage-ID: <ID1@relay.test>\r\n\nbody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Meta.AddMissingHeaders = !tc.noAdd
			ed := plannedEdits(c, []byte(tc.in), c.Tenant(tc.tenant), tc.campaign)
			if got := string(ed.apply([]byte(tc.in), "ID1", "relay.test", policyTime)); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestReadMeta(t *testing.T) {
	c := policyConfig(t)
	e := &Engine{cfg: c}
	msg := "X-Tenant: acme\r\nFrom: a@acme.example\r\nx-campaign:\r\n spring\r\nX-Type: Transactional\r\nSubject: s\r\n\r\nX-Tenant: body, not header\r\n"
	stripped := "From: a@acme.example\r\nSubject: s\r\n\r\nX-Tenant: body, not header\r\n"
	m := e.readMeta([]byte(msg), true)
	if m.tenant != "acme" || m.campaign != "spring" || m.priority != 1 || string(m.stripped([]byte(msg))) != stripped {
		t.Errorf("trusted: %+v\n%q", m, m.stripped([]byte(msg)))
	}
	m = e.readMeta([]byte(msg), false)
	if m.tenant != "" || m.campaign != "" || m.priority != 0 || string(m.stripped([]byte(msg))) != stripped {
		t.Errorf("untrusted: values must not count, headers still stripped: %+v", m)
	}
	c.Meta.StripMetaHeaders = false
	if m = e.readMeta([]byte(msg), true); string(m.stripped([]byte(msg))) != msg || m.tenant != "acme" {
		t.Errorf("strip_meta_headers off: %q", m.stripped([]byte(msg)))
	}
}
