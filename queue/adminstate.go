package queue

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Admin state: the operator's rules that must outlive a restart
// (suspensions, bounces and holds made through the admin API or by a
// policy script, while they are in force) are kept in the spool's own
// Pebble index, under their own prefix:
//
//	a/<key>  → an opaque value (the engine's encoding of one rule)
//
// They live here rather than in a separate file beside the spool because
// they are few, small and written rarely, and Pebble already gives what a
// separate store would have to rebuild: atomic, checksummed writes and a
// synced WAL, with no second file to fsync, rename, back up or lose apart
// from the queue the rules act on. A rule and the mail it holds are copied,
// restored and deleted together with the spool directory. The spool knows
// nothing of what a rule means: keys and values are the caller's, and
// nothing else reads or writes a/ (Scan, Compact and the live counts see
// only m/ keys, the quarantine only q/ keys).
//
// PutAdminState is synced (a rule an operator was told about survives a
// crash); DeleteAdminState is not (like Remove: the next synced write
// carries it, and a crash just before can only bring back a rule whose
// expiry time the engine checks again when it restores it).
const (
	adminPrefix = "a/"
	adminEnd    = "a0"
	// MaxAdminStateValue bounds one admin state value.
	MaxAdminStateValue = 64 << 10
)

// PutAdminState stores value under key in the admin keyspace, synced.
func (s *Spool) PutAdminState(key string, value []byte) error {
	if key == "" {
		return errors.New("queue: admin state: empty key")
	}
	if len(value) > MaxAdminStateValue {
		return fmt.Errorf("queue: admin state %s: %d bytes, more than %d", key, len(value), MaxAdminStateValue)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.db.Set(indexKey(adminPrefix, key), value, pebble.Sync); err != nil {
		return fmt.Errorf("queue: admin state %s: %w", key, err)
	}
	return nil
}

// DeleteAdminState removes key from the admin keyspace (not synced on its
// own; see above). Removing a key that is not there is no error.
func (s *Spool) DeleteAdminState(key string) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.db.Delete(indexKey(adminPrefix, key), pebble.NoSync); err != nil {
		return fmt.Errorf("queue: admin state %s: %w", key, err)
	}
	return nil
}

// AdminStates calls fn with every key and value of the admin keyspace, in
// key order. The slices are valid only during the call; an error from fn
// stops the scan and is returned.
func (s *Spool) AdminStates(fn func(key string, value []byte) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return scanIndex(s.db, adminPrefix, adminEnd, true, func(k, v []byte) error {
		return fn(string(k), v)
	})
}
