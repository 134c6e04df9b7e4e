package feedback

import (
	"errors"
	"strings"
	"testing"
)

// TestRefRoundTrip: a sealed token opens to what was sealed, under the same
// secret only; any altered byte, another secret or no secret is ErrForged.
func TestRefRoundTrip(t *testing.T) {
	k := NewKey("s3cret")
	for _, r := range []Ref{
		{ID: "0lq3k2x1a0000abcdefg", Tenant: "acme", Campaign: "spring-sale"},
		{ID: "0lq3k2x1a0000abcdefg", Tenant: "acme", Campaign: "spring-sale", Recipient: "user@d1.test"},
		{ID: "x"},
		{ID: strings.Repeat("é", 40), Tenant: "t;\r\n", Campaign: "c@d"},
	} {
		tok := k.Seal(r)
		if strings.ContainsAny(tok, "+/=@ \r\n") {
			t.Errorf("token %q has characters unsafe in a local part", tok)
		}
		got, err := k.Open(tok)
		if err != nil || got != r {
			t.Errorf("Open(Seal(%+v)) = %+v, %v", r, got, err)
		}
		if _, err := NewKey("other").Open(tok); !errors.Is(err, ErrForged) {
			t.Errorf("another secret opens %q: %v", tok, err)
		}
		if _, err := (Key{}).Open(tok); !errors.Is(err, ErrForged) {
			t.Errorf("no secret opens %q: %v", tok, err)
		}
		// Flip each character in turn: never a valid token for another ref.
		for i := range tok {
			b := []byte(tok)
			b[i] ^= 1
			if got, err := k.Open(string(b)); err == nil {
				t.Errorf("altered token %q opens to %+v", b, got)
			}
		}
	}
	// A token whose tenant was changed, its MAC kept: the MAC covers the
	// fields.
	raw, _ := b64.DecodeString(k.Seal(Ref{ID: "a", Tenant: "acme"}))
	raw[4] = 'X' // "acme" → "Xcme"
	if r, err := k.Open(b64.EncodeToString(raw)); !errors.Is(err, ErrForged) {
		t.Errorf("token with an altered tenant: %+v, %v; want ErrForged", r, err)
	}
	for _, bad := range []string{"", "!!!", "AAAA", strings.Repeat("A", 5000)} {
		if _, err := k.Open(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Open(%.20q) = %v, want ErrBadToken", bad, err)
		}
	}
}

func TestVERP(t *testing.T) {
	a := VERPAddress("bounce", "TOK-en_1", "bounces.example")
	if a != "bounce+TOK-en_1@bounces.example" {
		t.Fatalf("VERPAddress = %q", a)
	}
	for addr, want := range map[string]string{
		a:                           "TOK-en_1",
		"Bounce+x@bounces.example":  "x",
		"bounce@bounces.example":    "",
		"bouncer+x@bounces.example": "",
		"bounce+@bounces.example":   "",
		"bounce+x":                  "",
	} {
		got, ok := VERPToken(addr, "bounce")
		if got != want || ok != (want != "") {
			t.Errorf("VERPToken(%q) = %q, %v; want %q", addr, got, ok, want)
		}
	}
}

// TestParseBounds: a report with more recipient groups, parts or nesting
// than the bounds is read up to them, and bad input is an error that says
// why, never a panic.
func TestParseBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.d1.test\r\n")
	for i := 0; i < 3*MaxRecipients; i++ {
		b.WriteString("\r\nFinal-Recipient: rfc822; u" + strings.Repeat("x", i%7) + "@d1.test\r\nAction: failed\r\nStatus: 5.1.1\r\n")
	}
	b.WriteString("--b--\r\n")
	r, err := Parse([]byte(b.String()))
	if err != nil || len(r.Recipients) != MaxRecipients {
		t.Errorf("%d recipient groups: %v, %d read, want %d", 3*MaxRecipients, err, len(r.Recipients), MaxRecipients)
	}

	// 200 empty parts before the report: past MaxParts it is not looked at.
	many := "Content-Type: multipart/mixed; boundary=m\r\n\r\n" + strings.Repeat("--m\r\nContent-Type: text/plain\r\n\r\nx\r\n", 200) +
		"--m\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n--m--\r\n"
	if _, err := Parse([]byte(many)); !errors.Is(err, ErrNotReport) {
		t.Errorf("report after 200 parts: %v, want ErrNotReport", err)
	}
	// Nesting past MaxDepth.
	deep := "Content-Type: multipart/mixed; boundary=a\r\n\r\n"
	for _, bd := range []string{"a", "b", "c", "d", "e"} {
		next := string(rune(bd[0] + 1))
		deep += "--" + bd + "\r\nContent-Type: multipart/mixed; boundary=" + next + "\r\n\r\n"
	}
	deep += "--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
	if _, err := Parse([]byte(deep)); !errors.Is(err, ErrNotReport) {
		t.Errorf("report %d levels deep: %v, want ErrNotReport", MaxDepth+2, err)
	}
	for in, want := range map[string]error{
		"Subject: hi\r\n\r\nhello\r\n":                                                                                ErrNotReport,
		"Content-Type: multipart/report\r\n\r\n--x\r\n":                                                               ErrMalformed, // no boundary
		"Content-Type: multipart/report; boundary=z\r\n\r\nno parts":                                                  ErrMalformed,
		"Content-Type: multipart/report; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nonly text\r\n--z--": ErrNotReport,
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %v, want %v", in, err, want)
		}
	}
}
