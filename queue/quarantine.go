package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A corrupt index value or body record concerns one message, and the spool
// treats it so: it takes that message out of the spool (quarantines it),
// says so through Options.OnCorrupt, and goes on with the others. Postfix
// does the same with a queue file it cannot read (it moves it to its
// "corrupt" queue and logs a warning): the message is neither delivered nor
// bounced, since what it says is not known for sure, and an operator can
// look at what is left of it.
//
// Quarantining moves the index entry m/<id> to q/<id> in one synced batch
// (so that a crash leaves it in one place or the other, never both or
// neither), with a record of when and why and the index value as it was.
// The message no longer counts as live in its segment, so the segment is
// deleted as soon as its other messages are gone: the quarantine keeps the
// envelope, not the body. Nothing reads q/ entries but Quarantined and
// QuarantinedIDs, so a quarantined message cannot come back: Update of its
// id finds no m/ entry and writes nothing, Remove has nothing to remove,
// and Compact never sees it.
//
// The quarantine is bounded: each record keeps at most maxQuarantineValue
// bytes of the index value and maxQuarantineReason bytes of the reason,
// and at most Options.MaxQuarantined records are kept (10,000 by default),
// the lowest ids (the oldest messages) going first.

// CorruptKind says where the spool found a message corrupt.
type CorruptKind uint8

const (
	// CorruptIndex: the message's index value (m/<id>) does not decode, or
	// its id is not one Append would take. Nothing of the message is
	// known for sure, not even its recipients.
	CorruptIndex CorruptKind = 1
	// CorruptRecord: the message's body record is torn, fails its
	// checksum, does not decompress, or its segment is missing. Its
	// envelope (Corruption.Message) is intact; its body is lost.
	CorruptRecord CorruptKind = 2
)

// String returns "index" or "record", the value of the kind label of
// gannet_spool_corrupt_total.
func (k CorruptKind) String() string {
	switch k {
	case CorruptIndex:
		return "index"
	case CorruptRecord:
		return "record"
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// Corruption is one message the spool found corrupt and quarantined.
type Corruption struct {
	ID     string
	Kind   CorruptKind
	Reason string // what is wrong: the decoder's or reader's error
	// Size is the size of what is corrupt: the index value (CorruptIndex)
	// or the body record (CorruptRecord), in bytes.
	Size int64
	At   time.Time // when it was quarantined
	// Message is the metadata of a CorruptRecord message as the index had
	// it (recipients and their states, sender, tenant, …); nil for
	// CorruptIndex.
	Message *Message
	// Value is the index value as it was (its first maxQuarantineValue
	// bytes).
	Value []byte
	// Err is set when the message could not be quarantined (the index
	// write failed): it stays under m/<id>, is skipped until the next Open
	// finds it again, and Quarantined does not know it.
	Err error
}

// errStopScan ends a scanIndex early; it never leaves this package.
var errStopScan = errors.New("queue: scan stopped")

// ErrNotCorrupt is returned by Quarantine when the message's index value
// decodes and its body record reads back intact: there is nothing to
// quarantine (whatever failed before was not the spool's data).
var ErrNotCorrupt = errors.New("queue: message is not corrupt")

const (
	// DefaultMaxQuarantined is Options.MaxQuarantined when zero.
	DefaultMaxQuarantined = 10000
	// maxQuarantineValue bounds the bytes of the index value a quarantine
	// record keeps (a message with a thousand recipients takes about 40 KB).
	maxQuarantineValue = 64 << 10
	// maxQuarantineReason bounds the reason a quarantine record keeps.
	maxQuarantineReason = 1024
	// quarantineVersion is the first byte of a quarantine record.
	quarantineVersion = 1
	// quarantineChunk and quarantineChunkBytes bound the corrupt entries
	// Scan gathers before it quarantines them in one batch.
	quarantineChunk      = 256
	quarantineChunkBytes = 4 << 20
)

// Quarantine record encoding, version 1 (the value of q/<id>; a string is a
// uvarint length and the bytes):
//
//	0   1  version (1)
//	1   1  kind (CorruptKind)
//	2   …  varint quarantined at (Unix ns), uvarint size, string reason,
//	       string index value (at most maxQuarantineValue bytes)

// encodeQuarantine appends the quarantine record of c.
func encodeQuarantine(dst []byte, c *Corruption) []byte {
	dst = append(dst, quarantineVersion, byte(c.Kind))
	dst = binary.AppendVarint(dst, unixNano(c.At))
	dst = binary.AppendUvarint(dst, uint64(c.Size))
	dst = appendString(dst, c.Reason)
	dst = binary.AppendUvarint(dst, uint64(len(c.Value)))
	return append(dst, c.Value...)
}

// decodeQuarantine decodes the quarantine record of id. Anything malformed,
// including trailing bytes, is reported as ErrCorrupt; it never panics. A
// CorruptRecord's Message is decoded from the kept index value when it
// decodes.
func decodeQuarantine(id string, b []byte) (Corruption, error) {
	c := Corruption{ID: id}
	if len(b) < 2 {
		return c, corruptf("quarantine record of %d bytes", len(b))
	}
	if b[0] != quarantineVersion {
		return c, corruptf("quarantine record version %d", b[0])
	}
	c.Kind = CorruptKind(b[1])
	if c.Kind != CorruptIndex && c.Kind != CorruptRecord {
		return c, corruptf("quarantine record kind %d", b[1])
	}
	r := metaReader{b: b[2:], name: "quarantine record"}
	c.At = fromUnixNano(r.varint("time"))
	size := r.uvarint("size")
	c.Reason = r.string("reason")
	n := r.uvarint("value length")
	if r.err == nil && n != uint64(len(r.b)) {
		r.fail("value length")
	}
	if r.err == nil && size > 1<<62 {
		r.fail("size")
	}
	if r.err != nil {
		return Corruption{ID: id}, r.err
	}
	c.Size = int64(size)
	c.Value = bytes.Clone(r.b)
	c.Message = envelopeOf(&c)
	return c, nil
}

// envelopeOf decodes the kept index value of a CorruptRecord; nil for
// CorruptIndex, or when the value was cut to maxQuarantineValue.
func envelopeOf(c *Corruption) *Message {
	if c.Kind != CorruptRecord {
		return nil
	}
	m := &Message{ID: c.ID}
	if decodeMeta(c.Value, m) != nil {
		return nil
	}
	return m
}

// quarantineEntry is a corrupt m/ entry on its way to the quarantine.
type quarantineEntry struct {
	id    string
	value []byte // the m/ value found corrupt; it is moved only if still there
	kind  CorruptKind
	cause error
	size  int64
}

// corruption is the record of e, quarantined at now.
func (e *quarantineEntry) corruption(now time.Time) Corruption {
	reason := e.cause.Error()
	if len(reason) > maxQuarantineReason {
		reason = strings.ToValidUTF8(reason[:maxQuarantineReason], "")
	}
	c := Corruption{ID: e.id, Kind: e.kind, Reason: reason, Size: e.size, At: now,
		Value: e.value[:min(len(e.value), maxQuarantineValue)]}
	c.Message = envelopeOf(&c)
	return c
}

// Quarantine takes message id out of the spool when it is corrupt: its index
// value does not decode, or its body record cannot be read back (Body
// returned an error wrapping ErrCorrupt). Its index entry moves to the
// quarantine, where Quarantined finds it; its segment no longer counts it;
// Options.OnCorrupt is told. It returns ErrNotCorrupt, and changes nothing,
// when the message reads back intact; ErrNotFound when id is not in the
// spool (another caller may have quarantined it first); any other error
// (an I/O error reading the record, a failed index write) leaves the
// message where it is.
func (s *Spool) Quarantine(id string) error {
	unlock, err := s.lockID(id)
	if err != nil {
		return err
	}
	e, err := s.checkCorrupt(id)
	var done []Corruption
	if err == nil {
		done, err = s.quarantineLocked([]quarantineEntry{e})
	}
	unlock()
	if err != nil {
		return fmt.Errorf("queue: quarantine %s: %w", id, err)
	}
	s.report(done)
	return nil
}

// checkCorrupt reads the index entry and the body record of id (whose
// stripe the caller holds) and says what is corrupt about them.
func (s *Spool) checkCorrupt(id string) (quarantineEntry, error) {
	v, closer, err := s.db.Get(metaKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return quarantineEntry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return quarantineEntry{}, err
	}
	e := quarantineEntry{id: id, value: bytes.Clone(v)}
	closer.Close()
	var m Message
	if err := decodeMeta(e.value, &m); err != nil {
		e.kind, e.cause, e.size = CorruptIndex, err, int64(len(e.value))
		return e, nil
	}
	loc := location{m.Segment, m.Offset, m.Length}
	_, err = s.body(id, loc, true)
	switch {
	case err == nil:
		return e, ErrNotCorrupt
	case !errors.Is(err, ErrCorrupt):
		return e, err // an I/O error says nothing about the data
	}
	e.kind, e.cause, e.size = CorruptRecord, err, loc.Length
	return e, nil
}

// quarantineAll quarantines the entries Scan found corrupt, in one batch,
// and reports them. When the index cannot be written they are reported
// with Err set: Scan skips them all the same.
func (s *Spool) quarantineAll(list []quarantineEntry) {
	ids := make([]string, len(list))
	for i := range list {
		ids[i] = list[i].id
	}
	unlock := s.lockStripes(ids)
	done, err := s.quarantineLocked(list)
	unlock()
	if err != nil {
		now := s.now()
		done = done[:0]
		for i := range list {
			c := list[i].corruption(now)
			c.Err = err
			done = append(done, c)
		}
	}
	s.report(done)
}

// quarantineLocked moves the m/ entries of list to q/ in one synced batch;
// the caller holds the stripes of their ids. An entry whose value is no
// longer the one found corrupt (updated or removed meanwhile) is left
// alone. The moved ones stop counting in their segments (deleting those
// left with nothing live), and the quarantine is trimmed to its bound. It
// returns the moved ones, for report.
func (s *Spool) quarantineLocked(list []quarantineEntry) ([]Corruption, error) {
	now := s.now()
	b := s.db.NewBatch()
	defer b.Close()
	var done []Corruption
	var locs []location // of the moved entries whose location decodes (Open counted them live)
	for i := range list {
		e := &list[i]
		v, closer, err := s.db.Get(metaKey(e.id))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		same := bytes.Equal(v, e.value)
		closer.Close()
		if !same {
			continue
		}
		c := e.corruption(now)
		if err := b.Delete(metaKey(e.id), nil); err != nil {
			return nil, err
		}
		if err := b.Set(quarantineKey(e.id), encodeQuarantine(nil, &c), nil); err != nil {
			return nil, err
		}
		done = append(done, c)
		if loc, err := decodeLocation(e.value); err == nil {
			locs = append(locs, loc)
		}
	}
	if len(done) == 0 {
		return nil, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, noSpace(err)
	}
	ids := make([]string, len(done))
	for i := range done {
		ids[i] = done[i].ID
	}
	s.noteQuarantined(ids)
	for _, loc := range locs {
		s.nLive.Add(-1)
		s.release(loc.Segment)
	}
	s.qMu.Lock()
	s.nQuarantined += len(done)
	s.trimQuarantineLocked()
	s.qMu.Unlock()
	return done, nil
}

// report tells Options.OnCorrupt (else Options.Logf) of each corruption.
func (s *Spool) report(cs []Corruption) {
	for _, c := range cs {
		switch {
		case s.opts.OnCorrupt != nil:
			s.opts.OnCorrupt(c)
		case s.opts.Logf != nil && c.Err != nil:
			s.opts.Logf("queue: message %s: corrupt %s (%s); skipped, could not quarantine it: %v", c.ID, c.Kind, c.Reason, c.Err)
		case s.opts.Logf != nil:
			s.opts.Logf("queue: message %s: corrupt %s (%s); quarantined", c.ID, c.Kind, c.Reason)
		}
	}
}

// trimQuarantineLocked deletes the quarantine records with the lowest ids
// beyond Options.MaxQuarantined (s.qMu held). The delete is not synced: a
// crash undoes it, and the next Open trims again.
func (s *Spool) trimQuarantineLocked() {
	excess := s.nQuarantined - s.opts.MaxQuarantined
	if excess <= 0 {
		return
	}
	end := []byte(quarantineEnd)
	n := 0
	err := scanIndex(s.db, quarantinePrefix, quarantineEnd, false, func(id, _ []byte) error {
		if n == excess {
			end = quarantineKey(string(id))
			return errStopScan
		}
		n++
		return nil
	})
	if err == nil || errors.Is(err, errStopScan) {
		err = s.db.DeleteRange([]byte(quarantinePrefix), end, pebble.NoSync)
	}
	if err != nil {
		if s.opts.Logf != nil {
			s.opts.Logf("queue: trim the quarantine: %v", err)
		}
		return
	}
	s.nQuarantined -= n
}

// countQuarantine counts the quarantine records at Open, and trims them to
// Options.MaxQuarantined (which may have been lowered).
func (s *Spool) countQuarantine() error {
	s.qMu.Lock()
	defer s.qMu.Unlock()
	s.nQuarantined = 0
	err := scanIndex(s.db, quarantinePrefix, quarantineEnd, false, func([]byte, []byte) error {
		s.nQuarantined++
		return nil
	})
	if err != nil {
		return err
	}
	s.trimQuarantineLocked()
	return nil
}

// Quarantined returns the quarantine record of message id, and false when
// the quarantine holds none. A record that does not decode itself is
// returned with its Reason saying so, rather than as an error.
func (s *Spool) Quarantined(id string) (Corruption, bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return Corruption{}, false, ErrClosed
	}
	v, closer, err := s.db.Get(quarantineKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return Corruption{}, false, nil
	}
	if err != nil {
		return Corruption{}, false, fmt.Errorf("queue: quarantined %s: %w", id, err)
	}
	defer closer.Close()
	c, err := decodeQuarantine(id, v)
	if err != nil {
		c = Corruption{ID: id, Reason: "unreadable quarantine record: " + err.Error(), Size: int64(len(v))}
	}
	return c, true, nil
}

// QuarantinedIDs returns the ids of up to limit quarantined messages, lowest
// (oldest) first, and how many the quarantine holds.
func (s *Spool) QuarantinedIDs(limit int) ([]string, int, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, 0, ErrClosed
	}
	s.qMu.Lock()
	total := s.nQuarantined
	s.qMu.Unlock()
	var ids []string
	err := scanIndex(s.db, quarantinePrefix, quarantineEnd, false, func(id, _ []byte) error {
		if len(ids) >= limit {
			return errStopScan
		}
		ids = append(ids, string(id))
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, 0, fmt.Errorf("queue: quarantined ids: %w", err)
	}
	return ids, total, nil
}

// lockStripes locks the stripes of ids in index order (Update, Remove and
// Quarantine hold at most one, so this cannot deadlock) and returns the
// function that unlocks them.
func (s *Spool) lockStripes(ids []string) (unlock func()) {
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		stripes = append(stripes, s.stripeIndex(id))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.stripes[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.stripes[i].Unlock()
		}
	}
}
