package queue

import (
	"testing"
	"time"
)

// TestAdminStateSurvivesReopen: admin state written, overwritten and
// deleted reads back as left after the spool is closed and opened again,
// and is neither a message nor counted as one.
func TestAdminStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{ID: "m1", From: "a@src.test", Created: time.Now(), Recipients: []Recipient{{Addr: "r@x.test"}}}
	if err := sp.Append(m, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"suspend/1": "one", "suspend/2": "two", "bounce/3": "three"} {
		if err := sp.PutAdminState(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.PutAdminState("suspend/2", []byte("two again")); err != nil {
		t.Fatal(err)
	}
	if err := sp.DeleteAdminState("bounce/3"); err != nil {
		t.Fatal(err)
	}
	if err := sp.DeleteAdminState("nothing"); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
	if err := sp.PutAdminState("", nil); err == nil {
		t.Error("an empty key was taken")
	}
	if err := sp.PutAdminState("big", make([]byte, MaxAdminStateValue+1)); err == nil {
		t.Error("an oversized value was taken")
	}
	sp.Close()
	if err := sp.PutAdminState("late", nil); err != ErrClosed {
		t.Errorf("put after Close: %v", err)
	}

	sp, err = Open(Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	got := map[string]string{}
	if err := sp.AdminStates(func(k string, v []byte) error { got[k] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["suspend/1"] != "one" || got["suspend/2"] != "two again" {
		t.Errorf("admin state after reopen: %v", got)
	}
	if st := sp.Stats(); st.Live != 1 {
		t.Errorf("live messages %d, want 1", st.Live)
	}
	n := 0
	if err := sp.Scan(func(*Message) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("scan: %d messages, %v", n, err)
	}
}
