package events

import (
	"os"
	"path/filepath"
	"testing"

	"gannet/engine/logrec"
)

// TestSinksAddedAndRemoved: the records are journaled once for the sinks
// that take them; a sink added to the configuration starts at the end of
// the journal (its backlog 0), the others keep theirs; a sink removed
// from it loses its cursor file.
func TestSinksAddedAndRemoved(t *testing.T) {
	dir := t.TempDir()
	a := SinkOptions{Name: "a", Kind: KindWebhook, URL: "http://127.0.0.1:1/", Types: []string{"Delivery"}}
	b := SinkOptions{Name: "b", Kind: KindWebhook, URL: "http://127.0.0.1:1/"}
	open := func(sinks ...SinkOptions) *Shipper {
		s, err := New(Options{Dir: dir, Sinks: sinks})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(a)
	for i := range 6 {
		typ := logrec.Delivery
		if i%2 == 1 {
			typ = logrec.Bounce // a does not take them: not journaled
		}
		s.Add(record(i, typ, "acme"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(a, b)
	if n, m := s.Backlog("a"), s.Backlog("b"); n != 3 || m != 0 {
		t.Errorf("backlogs a %d, b %d; want 3 and 0", n, m)
	}
	s.Add(record(6, logrec.Bounce, "acme"))
	s.Add(record(7, logrec.Delivery, "acme"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(b, a)
	if n, m := s.Backlog("a"), s.Backlog("b"); n != 4 || m != 2 {
		t.Errorf("reopened in another order: backlogs a %d, b %d; want 4 and 2", n, m)
	}
	s.Close()
	s = open(b)
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "a.cursor")); !os.IsNotExist(err) {
		t.Errorf("the removed sink's cursor: %v", err)
	}
	if m := s.Backlog("b"); m != 2 {
		t.Errorf("backlog b %d, want 2", m)
	}
}
