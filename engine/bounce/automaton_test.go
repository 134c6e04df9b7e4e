package bounce

import "testing"

func TestAutomaton(t *testing.T) {
	pats := []string{"he", "she", "his", "hers", "x"}
	a := newAutomaton(pats)
	hits := make([]uint64, 1)
	a.scan([]byte("ushers"), hits)
	for i, p := range pats {
		want := p == "he" || p == "she" || p == "hers"
		if got := hits[0]&(1<<i) != 0; got != want {
			t.Errorf("pattern %q: found %v, want %v", p, got, want)
		}
	}
	empty := newAutomaton(nil)
	empty.scan([]byte("anything"), nil)
}
