package resolver

import (
	"slices"
	"strings"
	"testing"
)

func TestSiteKey(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"mx2.example.test.", "MX1.Example.Test"}, "mx1.example.test,mx2.example.test"},
		{[]string{"b.test", "a.test", "b.test."}, "a.test,b.test"},
		{[]string{"."}, ""},
		{nil, ""},
		{[]string{"only.test"}, "only.test"},
	}
	for _, tc := range tests {
		if got := SiteKey(tc.in); got != tc.want {
			t.Errorf("SiteKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSiteKey checks the properties delivery relies on: the key does not
// depend on order, case or trailing dots, and it is sorted and free of
// duplicates.
func FuzzSiteKey(f *testing.F) {
	f.Add("mx1.example.test,MX2.example.test.")
	f.Add("b,a,b,.")
	f.Add("")
	f.Add("x..y,Ü.test,,")
	f.Fuzz(func(t *testing.T, list string) {
		hosts := strings.Split(list, ",")
		key := SiteKey(hosts)
		rev := slices.Clone(hosts)
		slices.Reverse(rev)
		for i := range rev {
			if i%2 == 0 {
				rev[i] = strings.ToUpper(rev[i])
			}
		}
		if SiteKey(rev) != key && strings.ToLower(strings.ToUpper(list)) == strings.ToLower(list) {
			t.Fatalf("order or case changed the key: %q vs %q", SiteKey(rev), key)
		}
		if key == "" {
			return
		}
		parts := strings.Split(key, ",")
		if !slices.IsSorted(parts) {
			t.Fatalf("key %q is not sorted", key)
		}
		if len(slices.Compact(slices.Clone(parts))) != len(parts) {
			t.Fatalf("key %q has duplicates", key)
		}
	})
}
