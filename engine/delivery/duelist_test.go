package delivery

import (
	"testing"
	"time"
)

func TestDueList(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	var d dueList
	if !d.earliest().IsZero() {
		t.Fatal("empty list has a next attempt")
	}
	d.set("a.test", t0.Add(time.Hour))
	d.set("b.test", t0.Add(time.Minute))
	d.set("a.test", t0.Add(2*time.Hour)) // replaces, does not add
	if len(d) != 2 {
		t.Fatalf("%d entries, want 2", len(d))
	}
	if got := d.earliest(); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("earliest %v", got)
	}
	d.remove("b.test")
	if got := d.earliest(); !got.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("earliest after removing b.test: %v", got)
	}
	d.remove("nope.test")
	d.remove("a.test")
	if d != nil || !d.earliest().IsZero() {
		t.Fatalf("list not empty after removing all: %v", d)
	}
}
