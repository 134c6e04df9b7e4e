package queue

import (
	"errors"
	"testing"
	"time"
)

func TestDeadLetterLifecycle(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 1 << 10})
	t0 := time.Unix(1_700_000_000, 0)
	for _, id := range []string{"a1", "a2", "a3"} {
		m := &Message{ID: id, From: "s@x.test", Tenant: "acme", Created: t0,
			Recipients: []Recipient{{Addr: "r@y.test", State: Expired, Attempts: 3, LastReply: "451 4.0.0 later"}}}
		if err := s.Append(m, []byte("Subject: "+id+"\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := s.MoveToDead(m, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Live != 0 || st.Dead != 3 {
		t.Fatalf("stats %+v", st)
	}
	if got := scanAll(t, s); len(got) != 0 {
		t.Fatalf("queue scan sees dead letters: %v", got)
	}
	d, err := s.DeadLetter("a2")
	if err != nil || d.Tenant != "acme" || !d.NextDue.Equal(t0.Add(time.Hour)) || d.Recipients[0].State != Expired {
		t.Fatalf("DeadLetter: %+v %v", d, err)
	}
	if b, err := s.Body(d); err != nil || string(b) != "Subject: a2\r\n\r\nbody\r\n" {
		t.Fatalf("body %q %v", b, err)
	}
	// Reopen: the dead letters and their segments are still there.
	s.Close()
	s = openTest(t, Options{Dir: dir, SegmentSize: 1 << 10})
	if st := s.Stats(); st.Dead != 3 || st.Segments == 0 {
		t.Fatalf("after reopen %+v", st)
	}
	var ids []string
	s.ScanDead(func(m *Message) error { ids = append(ids, m.ID); return nil })
	if len(ids) != 3 || ids[0] != "a1" {
		t.Fatalf("scan dead %v", ids)
	}
	now := t0.Add(2 * time.Hour)
	m, err := s.RequeueDead("a1", now)
	if err != nil || m.Recipients[0].State != Pending || m.Recipients[0].Attempts != 0 || !m.Created.Equal(now) {
		t.Fatalf("requeue %+v %v", m, err)
	}
	if got := scanAll(t, s); got["a1"] == nil {
		t.Fatal("requeued message not in the queue")
	}
	if _, err := s.RequeueDead("a1", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("requeue twice: %v", err)
	}
	if err := s.PurgeDead("a2"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireDead(t0.Add(2 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("expire: %d %v", n, err)
	}
	if st := s.Stats(); st.Dead != 0 || st.Live != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Compaction keeps working with the requeued one.
	if _, err := s.Compact(0.5); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Body(m); err != nil || len(b) == 0 {
		t.Fatalf("body after compact: %v", err)
	}
}

func TestCompactMovesDeadLetters(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 300})
	var dead *Message
	for i := range 20 {
		m := &Message{ID: "m" + string(rune('a'+i)), Recipients: []Recipient{{Addr: "r@y.test", State: Expired}}}
		if err := s.Append(m, []byte("some body bytes that are not tiny at all, no\r\n")); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			dead = m
			if err := s.MoveToDead(m, time.Now()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		s.Remove(m.ID)
	}
	st, err := s.Compact(0.9)
	if err != nil {
		t.Fatal(err)
	}
	if st.Moved == 0 {
		t.Fatalf("nothing moved: %+v", st)
	}
	d, err := s.DeadLetter(dead.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Segment == dead.Segment {
		t.Fatalf("dead letter not moved: %+v", d)
	}
	if b, err := s.Body(dead); err != nil || len(b) == 0 {
		t.Fatalf("body of moved dead letter: %v", err)
	}
}
