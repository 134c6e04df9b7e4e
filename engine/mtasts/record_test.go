package mtasts

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		in   string
		id   string
		ext  []string
		fail bool
	}{
		// RFC 8461 §3.1's example.
		{in: "v=STSv1; id=20160831085700Z;", id: "20160831085700Z"},
		{in: "v=STSv1;id=abc", id: "abc"},
		{in: "v=STSv1;  id=abc  ;  ", id: "abc"},
		{in: "v=STSv1; id=abc; ext-1.x=val!", id: "abc", ext: []string{"ext-1.x=val!"}},
		{in: "v=STSv1; foo=bar; id=X1", id: "X1", ext: []string{"foo=bar"}},
		{in: "v=STSv1; id=" + "0123456789abcdef0123456789abcdef", id: "0123456789abcdef0123456789abcdef"},
		{in: "v=STSv1; id=" + "0123456789abcdef0123456789abcdef0", fail: true}, // 33 characters
		{in: "v=STSv1;", fail: true},                                           // no id
		{in: "v=STSv1", fail: true},                                            // no id
		{in: "v=STSv1; id=", fail: true},                                       // empty id
		{in: "v=STSv1; id=a-b", fail: true},                                    // id: letters and digits only
		{in: "v=STSv1; id=a; id=b", fail: true},                                // two ids
		{in: "id=a; v=STSv1", fail: true},                                      // version first
		{in: "v=STSv2; id=a", fail: true},                                      // other version
		{in: "v=stsv1; id=a", fail: true},                                      // case sensitive (%s)
		{in: "v=STSv1 id=a", fail: true},                                       // no delimiter
		{in: "v=STSv1; id=a; bad", fail: true},                                 // field without "="
		{in: "v=STSv1; id=a; _x=1", fail: true},                                // extension name starts with a letter or digit
		{in: "v=STSv1; id=a; x=", fail: true},                                  // empty extension value
		{in: "v=STSv1; id=a;; x=1", fail: true},                                // empty field
		{in: "v=STSv1; id=a; x=\x80", fail: true},                              // 8-bit
		{in: "v=STSv1;\tid=tab\t;", id: "tab"},                                 // WSP includes HTAB
		{in: "v=STSv1; id=20160831085700Z", id: "20160831085700Z"},
	}
	for _, tt := range tests {
		r, err := ParseRecord(tt.in)
		if tt.fail {
			if !errors.Is(err, ErrBadRecord) {
				t.Errorf("ParseRecord(%q) = %+v, %v; want ErrBadRecord", tt.in, r, err)
			}
			continue
		}
		if err != nil || r.ID != tt.id || !reflect.DeepEqual(r.Extensions, tt.ext) {
			t.Errorf("ParseRecord(%q) = %+v, %v; want id %q ext %q", tt.in, r, err, tt.id, tt.ext)
		}
	}
}

func TestSelectRecord(t *testing.T) {
	tests := []struct {
		txts []string
		id   string
		err  error
	}{
		{txts: nil, err: ErrNoRecord},
		{txts: []string{"v=spf1 -all"}, err: ErrNoRecord},
		{txts: []string{"v=spf1 -all", "v=STSv1; id=a1;"}, id: "a1"},
		// §3.1: more than one record after discarding the others: no policy.
		{txts: []string{"v=STSv1; id=a1;", "v=STSv1; id=a2;"}, err: ErrManyRecords},
		{txts: []string{"v=STSv1; id=a1;", "v=STSv1"}, err: ErrManyRecords},
		{txts: []string{"v=STSv1; nothing=here"}, err: ErrBadRecord},
		{txts: []string{"v=STSv10; id=a"}, err: ErrNoRecord},
	}
	for _, tt := range tests {
		r, err := SelectRecord(tt.txts)
		if !errors.Is(err, tt.err) || r.ID != tt.id {
			t.Errorf("SelectRecord(%q) = %+v, %v; want id %q err %v", tt.txts, r, err, tt.id, tt.err)
		}
	}
}

// FuzzSTSRecord: ParseRecord never panics, and what it accepts has a
// valid id and begins with the version.
func FuzzSTSRecord(f *testing.F) {
	for _, s := range []string{"v=STSv1; id=20160831085700Z;", "v=STSv1;id=a;x=y;", "v=STSv1", "v=STSv1; id=a; id=b", "", ";;;", "v=STSv1;\t id=z ;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			return
		}
		if !validID(r.ID) || len(s) < 7 || s[:7] != "v=STSv1" {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		if _, err := SelectRecord([]string{s}); err != nil {
			t.Fatalf("SelectRecord refuses what ParseRecord accepts: %q: %v", s, err)
		}
	})
}
