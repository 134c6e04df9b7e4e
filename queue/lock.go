package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockName is the file in the spool directory that one process holds an
// exclusive flock(2) on while the spool is open; it holds that process's
// pid, so that a second process can say who has the spool. The lock goes
// with the process (a crash releases it), unlike the file.
const lockName = "gannet.lock"

// ErrLocked is what Open's error wraps when another process has the spool
// open; the error itself is a *LockedError.
var ErrLocked = errors.New("spool in use")

// LockedError says which spool another process holds, and its pid when
// known (0 otherwise).
type LockedError struct {
	Dir string
	PID int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("spool %s is in use by another gannet (pid %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("spool %s is in use by another process (%s is locked)", e.Dir, filepath.Join(e.Dir, lockName))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// lockDir takes the spool directory's lock and writes this process's pid
// into it.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
			return nil, &LockedError{Dir: dir, PID: max(pid, 0)}
		}
		return nil, fmt.Errorf("queue: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
