package tlsrpt

import (
	"errors"
	"slices"
	"testing"
)

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		rua  []string
		ext  []string
		fail bool
	}{
		{in: "v=TLSRPTv1; rua=mailto:reports@example.com", rua: []string{"mailto:reports@example.com"}},
		{in: "v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt", rua: []string{"https://reporting.example.com/v1/tlsrpt"}},
		// §3 example: two addresses, with spaces around the comma.
		{in: "v=TLSRPTv1; rua=mailto:tlsrpt@mail.example.com , https://tlsrpt.example.com/r;",
			rua: []string{"mailto:tlsrpt@mail.example.com", "https://tlsrpt.example.com/r"}},
		{in: "v=TLSRPTv1; ext_1=x; rua=mailto:a@b.test", rua: []string{"mailto:a@b.test"}, ext: []string{"ext_1=x"}},
		// Other schemes are dropped; a record left with none is malformed.
		{in: "v=TLSRPTv1; rua=ftp://x.test/,mailto:a@b.test", rua: []string{"mailto:a@b.test"}},
		{in: "v=TLSRPTv1; rua=http://x.test/", fail: true},
		{in: "v=TLSRPTv1", fail: true},
		{in: "v=TLSRPTv1;", fail: true},
		{in: "v=TLSRPTv1; rua=", fail: true},
		{in: "v=TLSRPTv1; rua=mailto:a@b.test; rua=mailto:c@d.test", fail: true},
		{in: "v=TLSRPTv1x; rua=mailto:a@b.test", fail: true},
		{in: "v=TLSRPTv1; rua=mailto:a@b.test;;", fail: true},
		{in: "v=TLSRPTv1; rua=mailto:a@b.test; bad", fail: true},
		{in: "v=TLSRPTv1; rua=mailto:noat", fail: true},
		{in: "v=TLSRPTv1; rua=https://user@x.test/", fail: true},
		{in: "v=STSv1; id=1", fail: true},
	} {
		r, err := ParseRecord(tc.in)
		if tc.fail {
			if err == nil {
				t.Errorf("%q: parsed as %+v, want an error", tc.in, r)
			}
			continue
		}
		if err != nil || !slices.Equal(r.RUA, tc.rua) || !slices.Equal(r.Extensions, tc.ext) {
			t.Errorf("%q = %+v, %v; want rua %q ext %q", tc.in, r, err, tc.rua, tc.ext)
		}
	}
}

func TestSelectRecord(t *testing.T) {
	if _, err := SelectRecord([]string{"v=spf1 -all"}); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no record: %v", err)
	}
	if _, err := SelectRecord([]string{"v=TLSRPTv1; rua=mailto:a@b.test", "v=TLSRPTv1; rua=mailto:c@b.test"}); !errors.Is(err, ErrManyRecords) {
		t.Errorf("two records: %v", err)
	}
	r, err := SelectRecord([]string{"other", "v=TLSRPTv1; rua=mailto:a@b.test"})
	if err != nil || r.RUA[0] != "mailto:a@b.test" {
		t.Errorf("one record: %+v %v", r, err)
	}
	if got := MailtoAddress("mailto:a%40x@b.test"); got != "a@x@b.test" {
		t.Errorf("MailtoAddress = %q", got)
	}
	if MailtoAddress("https://x.test/") != "" {
		t.Error("MailtoAddress of https")
	}
}

func TestRecordRUACap(t *testing.T) {
	in := "v=TLSRPTv1; rua="
	for i := range MaxRUA + 3 {
		if i > 0 {
			in += ","
		}
		in += "mailto:a@b.test"
	}
	r, err := ParseRecord(in)
	if err != nil || len(r.RUA) != MaxRUA {
		t.Errorf("%d addresses, %v; want %d", len(r.RUA), err, MaxRUA)
	}
}
