package resolver

import (
	"slices"
	"strings"
	"testing"
)

func TestMXSite(t *testing.T) {
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
		k := MXSite(tc.in)
		if got := k.String(); got != tc.want {
			t.Errorf("MXSite(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if k.IsZero() != (tc.want == "") {
			t.Errorf("MXSite(%q).IsZero() = %v", tc.in, k.IsZero())
		}
		if hosts := k.MXHosts(); strings.Join(hosts, ",") != tc.want {
			t.Errorf("MXSite(%q).MXHosts() = %q", tc.in, hosts)
		}
	}
}

// TestRelaySite: the relay_to smarthost is a site of its own, named by its
// "host:port", with no MX host; it is not the MX site of that host.
func TestRelaySite(t *testing.T) {
	k := RelaySite("smtp.relay.test:2525")
	if k.String() != "smtp.relay.test:2525" || k.IsZero() {
		t.Errorf("RelaySite: %q, zero %v", k, k.IsZero())
	}
	if hosts := k.MXHosts(); hosts != nil {
		t.Errorf("RelaySite(...).MXHosts() = %q, want none", hosts)
	}
	if k == MXSite([]string{"smtp.relay.test:2525"}) {
		t.Error("a relay site equals the MX site of the same name")
	}
	if (SiteKey{}).MXHosts() != nil || !(SiteKey{}).IsZero() {
		t.Error("the zero key has MX hosts or is not zero")
	}
}

// FuzzMXSite checks the properties delivery relies on: the key does not
// depend on order, case or trailing dots, and it is sorted and free of
// duplicates.
func FuzzMXSite(f *testing.F) {
	f.Add("mx1.example.test,MX2.example.test.")
	f.Add("b,a,b,.")
	f.Add("")
	f.Add("x..y,Ü.test,,")
	f.Fuzz(func(t *testing.T, list string) {
		hosts := strings.Split(list, ",")
		key := MXSite(hosts)
		rev := slices.Clone(hosts)
		slices.Reverse(rev)
		for i := range rev {
			if i%2 == 0 {
				rev[i] = strings.ToUpper(rev[i])
			}
		}
		if MXSite(rev) != key && strings.ToLower(strings.ToUpper(list)) == strings.ToLower(list) {
			t.Fatalf("order or case changed the key: %q vs %q", MXSite(rev), key)
		}
		if key.IsZero() {
			return
		}
		parts := key.MXHosts()
		if !slices.IsSorted(parts) {
			t.Fatalf("key %q is not sorted", key)
		}
		if len(slices.Compact(slices.Clone(parts))) != len(parts) {
			t.Fatalf("key %q has duplicates", key)
		}
	})
}
