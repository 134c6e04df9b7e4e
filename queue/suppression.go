package queue

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Suppression list: the addresses mail must not go to (per tenant, and
// global), kept in the spool's own Pebble index under their own prefix:
//
//	s/<key>  → an opaque value (the engine's encoding of one entry)
//
// For the same reasons as the admin state (adminstate.go): the list is
// copied, restored and deleted with the spool it acts on, and Pebble gives
// atomic, checksummed writes with no second file to keep. The spool knows
// nothing of what a key or value means (engine/suppress does); nothing else
// reads or writes s/.
//
// PutSuppression says whether to sync: an entry an operator was told
// about is synced; an entry a bounce added need not be (a crash may lose
// the last few, and the next bounce to the address adds it again).
// DeleteSuppression is not synced, like DeleteAdminState.
const (
	suppressionPrefix = "s/"
	suppressionEnd    = "s0"
	// MaxSuppressionValue bounds one suppression value.
	MaxSuppressionValue = 4 << 10
)

// PutSuppression stores value under key in the suppression keyspace.
func (s *Spool) PutSuppression(key string, value []byte, sync bool) error {
	if key == "" {
		return errors.New("queue: suppression: empty key")
	}
	if len(value) > MaxSuppressionValue {
		return fmt.Errorf("queue: suppression %q: %d bytes, more than %d", key, len(value), MaxSuppressionValue)
	}
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.db.Set(indexKey(suppressionPrefix, key), value, opt); err != nil {
		return fmt.Errorf("queue: suppression %q: %w", key, err)
	}
	return nil
}

// DeleteSuppression removes key from the suppression keyspace (not
// synced). Removing a key that is not there is no error.
func (s *Spool) DeleteSuppression(key string) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.db.Delete(indexKey(suppressionPrefix, key), pebble.NoSync); err != nil {
		return fmt.Errorf("queue: suppression %q: %w", key, err)
	}
	return nil
}

// Suppression returns the value stored under key; ok is false when there
// is none.
func (s *Spool) Suppression(key string) (value []byte, ok bool, err error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	v, closer, err := s.db.Get(indexKey(suppressionPrefix, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("queue: suppression %q: %w", key, err)
	}
	value = append([]byte(nil), v...)
	closer.Close()
	return value, true, nil
}

// Suppressions calls fn with every key (from the first at or after from)
// and value of the suppression keyspace, in key order. The slices are
// valid only during the call; an error from fn stops the scan and is
// returned (ErrStopScan stops it with no error).
func (s *Spool) Suppressions(from string, fn func(key, value []byte) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: indexKey(suppressionPrefix, from),
		UpperBound: []byte(suppressionEnd),
	})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key()[len(suppressionPrefix):], v); err != nil {
			it.Close()
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// ErrStopScan, returned by a scan's callback, ends the scan early without
// an error.
var ErrStopScan = errors.New("queue: stop the scan")
