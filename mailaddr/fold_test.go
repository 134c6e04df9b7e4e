package mailaddr

import "testing"

// TestFold: the spellings of one mailbox fold to one form; different
// mailboxes stay different.
func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bob@example.test", "bob@example.test"},
		{"Bob@Example.TEST", "bob@example.test"},
		{"<Bob@example.test.>", "bob@example.test"},
		{"  bob@example.test ", "bob@example.test"},
		{"Ölaf@例子.test", "ölaf@xn--fsqu00a.test"},
		{"\"a@b\"@example.test", "\"a@b\"@example.test"},
		{"postmaster", "postmaster"},
	} {
		if got := Fold(tc.in); got != tc.want {
			t.Errorf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if Fold("bob@example.test") == Fold("bobby@example.test") {
		t.Error("two mailboxes folded to one")
	}
}

// TestFoldNoAlloc: an address already folded (the usual case on the RCPT
// path) costs no allocation.
func TestFoldNoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Fold("bob@example.test") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
