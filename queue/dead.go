package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Dead letters: a message whose recipients can no longer be delivered
// (expired past max_retry_age, or bounced when the engine keeps bounced
// mail) leaves the queue but not the spool. Its index entry moves from
// m/<id> to d/<id>, with the same value encoding (encodeMeta) and the
// body record left where it is; NextDue of a dead letter is the time it
// died, which is what ExpireDead compares with. A dead letter costs no
// memory outside Pebble: it is listed by a prefix scan (ScanDead), read by
// id (DeadLetter), put back in the queue with fresh retry counters
// (RequeueDead), or dropped (PurgeDead, ExpireDead). Its body keeps its
// segment alive like a queued message's, and compaction moves it the same
// way.
const (
	deadPrefix = "d/"
	deadEnd    = "d0"
)

func deadKey(id string) []byte { return indexKey(deadPrefix, id) }

// MoveToDead takes message m, whose recipients are all final, out of the
// queue into the dead letters, durably (one synced batch): its state as in
// m, the time it died as at. A message not in the queue yields ErrNotFound.
func (s *Spool) MoveToDead(m *Message, at time.Time) error {
	unlock, err := s.lockID(m.ID)
	if err != nil {
		return err
	}
	defer unlock()
	loc, err := s.lookup(m.ID)
	if err != nil {
		return fmt.Errorf("queue: move to dead: %w", err)
	}
	d := *m
	d.Segment, d.Offset, d.Length = loc.Segment, loc.Offset, loc.Length
	d.NextDue = at
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(metaKey(m.ID), nil); err != nil {
		return err
	}
	if err := b.Set(deadKey(m.ID), encodeMeta(nil, &d), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("queue: move %s to dead: %w", m.ID, noSpace(err))
	}
	s.nLive.Add(-1)
	s.nDead.Add(1)
	return nil
}

// decodeDead decodes a d/ value.
func decodeDead(id, v []byte) (*Message, error) {
	m := &Message{ID: string(id)}
	if err := decodeMeta(v, m); err != nil {
		return nil, fmt.Errorf("dead letter %s: %w", id, err)
	}
	return m, nil
}

// ScanDead calls fn with every dead letter in id order; DeadAt is
// m.NextDue. fn may keep the message. An entry that does not decode is
// skipped. An error from fn stops the scan and is returned.
func (s *Spool) ScanDead(fn func(m *Message) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return scanIndex(s.db, deadPrefix, deadEnd, true, func(id, v []byte) error {
		m, err := decodeDead(id, v)
		if err != nil {
			return nil
		}
		return fn(m)
	})
}

// ScanDeadAfter is ScanDead starting after id after (exclusive), for
// paging.
func (s *Spool) ScanDeadAfter(after string, fn func(m *Message) error) error {
	if after == "" {
		return s.ScanDead(fn)
	}
	return s.ScanDead(func(m *Message) error {
		if m.ID <= after {
			return nil
		}
		return fn(m)
	})
}

// DeadLetter returns the dead letter id; ErrNotFound when there is none.
func (s *Spool) DeadLetter(id string) (*Message, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, closer, err := s.db.Get(deadKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: dead letter %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeDead([]byte(id), v)
}

// RequeueDead puts dead letter id back in the queue with fresh retry
// counters: every recipient not delivered is pending again with no
// attempts, the message has no attempts, is due now and counts its age
// (max_retry_age) from now. It returns the message, for the caller to hand
// to delivery. ErrNotFound when id is no dead letter.
func (s *Spool) RequeueDead(id string, now time.Time) (*Message, error) {
	unlock, err := s.lockID(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	v, closer, err := s.db.Get(deadKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: dead letter %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	m, err := decodeDead([]byte(id), v)
	closer.Close()
	if err != nil {
		return nil, err
	}
	m.Attempts = 0
	m.NextDue = time.Time{}
	m.Created = now
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.State != Delivered {
			r.State, r.Attempts = Pending, 0
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(deadKey(id), nil); err != nil {
		return nil, err
	}
	if err := b.Set(metaKey(id), encodeMeta(nil, m), nil); err != nil {
		return nil, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("queue: requeue %s: %w", id, noSpace(err))
	}
	s.nDead.Add(-1)
	s.nLive.Add(1)
	return m, nil
}

// PurgeDead removes dead letter id and its body (the segment loses one
// live record). ErrNotFound when id is no dead letter.
func (s *Spool) PurgeDead(id string) error {
	unlock, err := s.lockID(id)
	if err != nil {
		return err
	}
	defer unlock()
	return s.purgeDeadLocked(id)
}

func (s *Spool) purgeDeadLocked(id string) error {
	v, closer, err := s.db.Get(deadKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: dead letter %s", ErrNotFound, id)
	}
	if err != nil {
		return err
	}
	loc, lerr := decodeLocation(v)
	closer.Close()
	if err := s.db.Delete(deadKey(id), pebble.NoSync); err != nil {
		return fmt.Errorf("queue: purge %s: %w", id, err)
	}
	s.nDead.Add(-1)
	if lerr == nil && loc.Segment != 0 {
		s.release(loc.Segment)
	}
	return nil
}

// ExpireDead purges the dead letters that died before before ([queue]
// dead_letter_after ago) and returns how many went.
func (s *Spool) ExpireDead(before time.Time) (int, error) {
	var old []string
	err := s.ScanDead(func(m *Message) error {
		if m.NextDue.Before(before) {
			old = append(old, m.ID)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range old {
		if err := s.PurgeDead(id); err == nil {
			n++
		} else if !errors.Is(err, ErrNotFound) {
			return n, err
		}
	}
	return n, nil
}
