package queue

import "testing"

func TestMessageDone(t *testing.T) {
	m := testMessage("x", 3)
	if m.Done() || m.Pending() != 3 {
		t.Fatalf("new message: Done %v, Pending %d", m.Done(), m.Pending())
	}
	m.Recipients[0].State = Delivered
	m.Recipients[1].State = Bounced
	if m.Done() || m.Pending() != 1 {
		t.Fatalf("one pending: Done %v, Pending %d", m.Done(), m.Pending())
	}
	m.Recipients[2].State = Expired
	if !m.Done() || m.Pending() != 0 {
		t.Fatalf("none pending: Done %v, Pending %d", m.Done(), m.Pending())
	}
	if Expired.String() != "expired" || RcptState(9).String() != "RcptState(9)" {
		t.Fatal("RcptState.String")
	}
}
