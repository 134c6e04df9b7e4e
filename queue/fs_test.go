package queue

import (
	"errors"
	"syscall"
	"testing"

	"gannet/queue/queuetest"
)

// A segment that cannot be created fails the appends of that group only.
func TestSegmentCreateFailure(t *testing.T) {
	ffs := queuetest.NewFaultFS(nil)
	s := openTest(t, Options{FS: ffs})
	ffs.FailCreates(syscall.ENOSPC, 1)
	if err := s.Append(testMessage("a", 1), []byte("x\r\n")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append when the segment cannot be created: %v, want ErrNoSpace", err)
	}
	m := testMessage("b", 1)
	if err := s.Append(m, []byte("y\r\n")); err != nil {
		t.Fatal(err)
	}
	if body, err := s.Body(m); err != nil || string(body) != "y\r\n" {
		t.Fatalf("Body = %q, %v", body, err)
	}
}
