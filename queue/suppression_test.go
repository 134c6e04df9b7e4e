package queue

import (
	"strings"
	"testing"
	"time"
)

// TestSuppressionKeyspace: suppression entries survive a reopen, scan in
// key order from a starting key, stop early on ErrStopScan, and are
// neither messages nor admin state.
func TestSuppressionKeyspace(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{ID: "m1", From: "a@src.test", Created: time.Now(), Recipients: []Recipient{{Addr: "r@x.test"}}}
	if err := sp.Append(m, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b\x00x@y.test", "a\x00x@y.test", "\x00g@y.test", "c\x00z@y.test"} {
		if err := sp.PutSuppression(k, []byte("v:"+k), k[0] == 'a'); err != nil {
			t.Fatal(err)
		}
	}
	sp.DeleteSuppression("c\x00z@y.test")
	if err := sp.PutSuppression("", nil, false); err == nil {
		t.Error("an empty key was taken")
	}
	if err := sp.PutSuppression("big", make([]byte, MaxSuppressionValue+1), false); err == nil {
		t.Error("an oversized value was taken")
	}
	sp.Close()

	sp, err = Open(Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var keys []string
	sp.Suppressions("", func(k, v []byte) error {
		if string(v) != "v:"+string(k) {
			t.Errorf("%q holds %q", k, v)
		}
		keys = append(keys, strings.ReplaceAll(string(k), "\x00", "|"))
		return nil
	})
	if strings.Join(keys, " ") != "|g@y.test a|x@y.test b|x@y.test" {
		t.Errorf("keys %v", keys)
	}
	keys = nil
	sp.Suppressions("a\x00x@y.test\x00", func(k, v []byte) error {
		keys = append(keys, string(k))
		return ErrStopScan
	})
	if len(keys) != 1 || keys[0] != "b\x00x@y.test" {
		t.Errorf("from a cursor, stopped: %q", keys)
	}
	if v, ok, err := sp.Suppression("a\x00x@y.test"); !ok || err != nil || string(v) != "v:a\x00x@y.test" {
		t.Errorf("Suppression: %q %v %v", v, ok, err)
	}
	if _, ok, _ := sp.Suppression("c\x00z@y.test"); ok {
		t.Error("a deleted entry reads back")
	}
	if st := sp.Stats(); st.Live != 1 {
		t.Errorf("live messages %d, want 1", st.Live)
	}
	n := 0
	sp.AdminStates(func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d admin states", n)
	}
}
