package bounce

// automaton is an Aho-Corasick string matcher (Aho and Corasick, "Efficient
// string matching", CACM 1975) compiled to a full DFA over byte classes: one
// table lookup per input byte, whatever the number of patterns. It reports
// which patterns occur anywhere in a text.
type automaton struct {
	// class maps a byte to its column; bytes that occur in no pattern
	// share column 0.
	class  [256]uint8
	ncols  int
	delta  []int32   // state*ncols + column -> next state
	output [][]int32 // state -> patterns that end here (suffixes included)
}

// newAutomaton compiles the patterns (non-empty byte strings). At most 255
// distinct bytes may occur across them, which folded ASCII guarantees.
func newAutomaton(patterns []string) *automaton {
	a := &automaton{}
	ncols := 1
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			if a.class[p[i]] == 0 {
				a.class[p[i]] = uint8(ncols)
				ncols++
			}
		}
	}
	a.ncols = ncols

	// The trie: goto[state][col], -1 = none.
	trie := [][]int32{newRow(ncols)}
	a.output = [][]int32{nil}
	for id, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := a.class[p[i]]
			if trie[s][c] < 0 {
				trie = append(trie, newRow(ncols))
				a.output = append(a.output, nil)
				trie[s][c] = int32(len(trie) - 1)
			}
			s = trie[s][c]
		}
		a.output[s] = append(a.output[s], int32(id))
	}

	// Breadth-first: failure links, merged outputs and the DFA table.
	n := len(trie)
	fail := make([]int32, n)
	a.delta = make([]int32, n*ncols)
	queue := make([]int32, 0, n)
	for c := 0; c < ncols; c++ {
		if t := trie[0][c]; t >= 0 {
			a.delta[c] = t
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		a.output[s] = append(a.output[s], a.output[fail[s]]...)
		for c := 0; c < ncols; c++ {
			t := trie[s][c]
			if t < 0 {
				a.delta[int(s)*ncols+c] = a.delta[int(fail[s])*ncols+c]
				continue
			}
			a.delta[int(s)*ncols+c] = t
			fail[t] = a.delta[int(fail[s])*ncols+c]
			queue = append(queue, t)
		}
	}
	return a
}

func newRow(n int) []int32 {
	r := make([]int32, n)
	for i := range r {
		r[i] = -1
	}
	return r
}

// scan sets bit p of hits for every pattern p that occurs in text. hits
// must hold at least one bit per pattern.
func (a *automaton) scan(text []byte, hits []uint64) {
	s := int32(0)
	for _, b := range text {
		s = a.delta[int(s)*a.ncols+int(a.class[b])]
		for _, p := range a.output[s] {
			hits[p>>6] |= 1 << (p & 63)
		}
	}
}
