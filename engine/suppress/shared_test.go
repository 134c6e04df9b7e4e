package suppress

import (
	"strings"
	"testing"
	"time"
)

// TestSharedChanges: adds, renewals, imports and removals made here are
// told to OnChange (the address folded); entries applied from another
// node are stored and told to nobody; an older add or a removal of an
// entry added here since changes nothing.
func TestSharedChanges(t *testing.T) {
	l, c, _ := newList(t)
	var told []Change
	l.SetOnChange(func(ch Change) { told = append(told, ch) })
	if err := l.Add("acme", "Bob@Example.TEST", "550 5.1.1 unknown", SourceBounce); err != nil {
		t.Fatal(err)
	}
	now := c.now().Unix()
	if len(told) != 1 || told[0] != (Change{Tenant: "acme", Address: "bob@example.test", Reason: "550 5.1.1 unknown", Source: SourceBounce, Created: now}) {
		t.Fatalf("told %+v", told)
	}
	if res, err := l.Import(strings.NewReader("a@x.test\nb@x.test\n"), "", SourceImport); err != nil || res.Added != 2 {
		t.Fatalf("import: %+v %v", res, err)
	}
	if len(told) != 3 || told[2].Address != "b@x.test" {
		t.Fatalf("told after an import of two: %+v", told)
	}
	if ok, err := l.Remove("", "A@x.test"); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if len(told) != 4 || !told[3].Removed || told[3].Address != "a@x.test" {
		t.Fatalf("told after a removal: %+v", told)
	}

	// From another node: stored, not told.
	told = nil
	if err := l.ApplyAdd(Change{Tenant: "", Address: "Far@Y.test", Reason: "complaint", Source: SourceComplaint, Created: now - 60}); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := l.Get("", "far@y.test"); !ok || err != nil || e.Created.Unix() != now-60 || e.Source != SourceComplaint {
		t.Fatalf("applied entry: %+v %v %v", e, ok, err)
	}
	if !l.Suppressed("anyone", "far@y.test") {
		t.Fatal("an applied entry does not suppress")
	}
	// An older add than the entry here: kept as it is.
	if err := l.ApplyAdd(Change{Tenant: "acme", Address: "bob@example.test", Reason: "older", Created: now - 10}); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := l.Get("acme", "bob@example.test"); e.Reason != "550 5.1.1 unknown" {
		t.Fatalf("an older add replaced the entry: %+v", e)
	}
	// A removal older than the entry here: kept; a newer one: removed.
	if err := l.ApplyRemove("acme", "bob@example.test", now-1); err != nil || !l.Suppressed("acme", "bob@example.test") {
		t.Fatalf("a removal older than the entry removed it (err %v)", err)
	}
	c.add(time.Minute)
	if err := l.ApplyRemove("acme", "BOB@example.test", c.now().Unix()); err != nil || l.Suppressed("acme", "bob@example.test") {
		t.Fatalf("a newer removal did not remove the entry (err %v)", err)
	}
	if len(told) != 0 {
		t.Fatalf("applied changes were told: %+v", told)
	}
}
