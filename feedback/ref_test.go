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
