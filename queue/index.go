package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"
)

// The index is a Pebble database under <Dir>/index. Its keys:
//
//	m/<id>     → message metadata (encodeMeta): location of the body record
//	             and the envelope with per-recipient state
//	d/<id>     → a dead letter (dead.go): the m/ value of a message whose
//	             recipients can no longer be delivered, next due = when it died
//	q/<id>     → a quarantined message (encodeQuarantine, quarantine.go): why
//	             it was taken out of the spool, and its index value as it was
//	x/format   → "gannet-spool-1", written when the spool is created and
//	             checked at every Open
//	x/tail     → the tail mark (encodeTail): the position (segment, offset)
//	             of the first record of the last group commit, written in
//	             that group's batch. An m/ entry at or past it may point at
//	             a record whose segment fsync never completed (the batch is
//	             synced at the same time as the segment), so Open verifies
//	             those records and drops the entries whose record is not
//	             there (Spool.dropUnacked); absent in a spool written before
//	             the two fsyncs overlapped, whose every entry followed its
//	             record's fsync
//
// Per-segment live counts are not stored: Open computes them from the m/
// keys (one pass over the location prefix of each value), so they can never
// disagree with the index after a crash. A q/ entry points at nothing: it
// keeps no segment alive.
//
// An m/ value that does not decode concerns its message only: Scan
// quarantines it and goes on. x/format is not a message: a value other than
// formatValue means a spool written by another version of Gannet (or not by
// Gannet at all), and Open refuses it rather than guess what its entries
// mean.
const (
	metaPrefix       = "m/"
	metaEnd          = "m0" // '/'+1: the upper bound of every m/ key
	quarantinePrefix = "q/"
	quarantineEnd    = "q0"
	formatKey        = "x/format"
	tailKey          = "x/tail"
	formatValue      = "gannet-spool-1"

	// indexFormat pins Pebble's on-disk format, so that a Pebble upgrade never
	// silently rewrites the index into a format older binaries cannot read.
	indexFormat = pebble.FormatValueSeparation
)

func metaKey(id string) []byte { return indexKey(metaPrefix, id) }

func quarantineKey(id string) []byte { return indexKey(quarantinePrefix, id) }

func indexKey(prefix, id string) []byte {
	return appendIndexKey(make([]byte, 0, len(prefix)+len(id)), prefix, id)
}

// appendIndexKey appends the key of id under prefix to dst.
func appendIndexKey(dst []byte, prefix, id string) []byte {
	return append(append(dst, prefix...), id...)
}

// quietLogger drops Pebble's informational chatter and passes errors on.
type quietLogger struct{ logf func(string, ...any) }

func (l quietLogger) Infof(string, ...any) {}
func (l quietLogger) Errorf(format string, args ...any) {
	if l.logf != nil {
		l.logf("queue: pebble: "+format, args...)
	}
}
func (l quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("queue: pebble fatal: "+format, args...))
}

// openIndex opens or creates the Pebble index in dir.
// fs is the filesystem Pebble writes to: the operating system's when nil
// (tests pass a crashable one).
func openIndex(dir string, cacheSize int64, memTable uint64, logf func(string, ...any), fs pebblevfs.FS) (*pebble.DB, error) {
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		FormatMajorVersion: indexFormat,
		Cache:              cache,
		MemTableSize:       memTable,
		Logger:             quietLogger{logf},
		MaxOpenFiles:       256,
		FS:                 fs,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open index %s: %w", dir, err)
	}
	v, closer, err := db.Get([]byte(formatKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		err = db.Set([]byte(formatKey), []byte(formatValue), pebble.Sync)
	case err == nil:
		if string(v) != formatValue {
			err = fmt.Errorf("queue: index %s has format %q, want %q", dir, v, formatValue)
		}
		closer.Close()
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Metadata value encoding, version 1. The location comes first at fixed
// offsets, so that startup can count live messages per segment, and the
// committer can fill it in, without a full decode:
//
//	0   1  version (1)
//	1   8  segment sequence number      (uint64 LE)
//	9   8  record offset in the segment (uint64 LE)
//	17  8  record length                (uint64 LE)
//	25  …  varint created (Unix ns, 0 = zero time), varint next due,
//	       varint attempts, varint size, varint priority,
//	       string from, string tenant, string campaign,
//	       uvarint recipient count, then per recipient:
//	       string addr, byte state, varint attempts, string last reply,
//	       then uvarint flags (bit 0: REQUIRETLS, RFC 8689),
//	       then, for a message with DSN parameters, the DSN section
//	       (see dsnSection)
//
// A string is a uvarint length and the bytes. Values written before the
// flags were added end after the last recipient: they decode with flags 0
// and no DSN parameters.
const (
	metaVersion  = 1
	metaFixedLen = 25
	// maxMetaRcpts bounds the recipients a value may claim; contract-wise a
	// message has at most max_recipients (1000 by default).
	maxMetaRcpts = 1 << 20
)

type location struct {
	Segment uint64
	Offset  int64
	Length  int64
}

func putLocation(b []byte, l location) {
	binary.LittleEndian.PutUint64(b[1:9], l.Segment)
	binary.LittleEndian.PutUint64(b[9:17], uint64(l.Offset))
	binary.LittleEndian.PutUint64(b[17:25], uint64(l.Length))
}

func decodeLocation(b []byte) (location, error) {
	if len(b) < metaFixedLen {
		return location{}, corruptf("metadata of %d bytes", len(b))
	}
	if b[0] != metaVersion {
		return location{}, corruptf("metadata version %d", b[0])
	}
	l := location{
		Segment: binary.LittleEndian.Uint64(b[1:9]),
		Offset:  int64(binary.LittleEndian.Uint64(b[9:17])),
		Length:  int64(binary.LittleEndian.Uint64(b[17:25])),
	}
	if l.Offset < 0 || l.Length < recordHeaderLen || l.Length > 2*maxRawLen {
		return location{}, corruptf("metadata location %+v", l)
	}
	return l, nil
}

// less orders positions in the spool's segments: by segment, then offset.
func (l location) less(o location) bool {
	return l.Segment < o.Segment || l.Segment == o.Segment && l.Offset < o.Offset
}

// encodeTail encodes the tail mark: segment and offset, little-endian.
func encodeTail(l location) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b[0:8], l.Segment)
	binary.LittleEndian.PutUint64(b[8:16], uint64(l.Offset))
	return b
}

// readTail reads the tail mark; ok is false when the index has none.
func readTail(db *pebble.DB) (mark location, ok bool, err error) {
	v, closer, err := db.Get([]byte(tailKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return location{}, false, nil
	}
	if err != nil {
		return location{}, false, err
	}
	defer closer.Close()
	if len(v) != 16 {
		// Unreadable: verify every entry rather than trust any.
		return location{}, true, nil
	}
	return location{Segment: binary.LittleEndian.Uint64(v[0:8]), Offset: int64(binary.LittleEndian.Uint64(v[8:16]))}, true, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeMeta appends the index value of m (ID excluded: it is the key).
func encodeMeta(dst []byte, m *Message) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, metaFixedLen)...)
	dst[start] = metaVersion
	putLocation(dst[start:], location{m.Segment, m.Offset, m.Length})
	dst = binary.AppendVarint(dst, unixNano(m.Created))
	dst = binary.AppendVarint(dst, unixNano(m.NextDue))
	dst = binary.AppendVarint(dst, int64(m.Attempts))
	dst = binary.AppendVarint(dst, int64(m.Size))
	dst = binary.AppendVarint(dst, int64(m.Priority))
	dst = appendString(dst, m.From)
	dst = appendString(dst, m.Tenant)
	dst = appendString(dst, m.Campaign)
	dst = binary.AppendUvarint(dst, uint64(len(m.Recipients)))
	for i := range m.Recipients {
		r := &m.Recipients[i]
		dst = appendString(dst, r.Addr)
		dst = append(dst, byte(r.State))
		dst = binary.AppendVarint(dst, int64(r.Attempts))
		dst = appendString(dst, r.LastReply)
	}
	dst = binary.AppendUvarint(dst, m.flags())
	return appendDSN(dst, m)
}

// dsnSection tags the optional section after the flags that holds the
// DSN parameters (RFC 3461) of a message that has any: values written
// before it existed simply end after the recipients.
//
//	byte 'D', byte ret, uvarint length + bytes envid, then per recipient:
//	byte notify, byte flags (1: delay DSN sent), uvarint length + bytes orcpt
const dsnSection = 'D'

// appendDSN appends the DSN section of m when it has one.
func appendDSN(dst []byte, m *Message) []byte {
	if !m.HasDSN() {
		return dst
	}
	dst = append(dst, dsnSection, m.DSNRet)
	dst = appendString(dst, m.EnvID)
	for i := range m.Recipients {
		r := &m.Recipients[i]
		var flags byte
		if r.DelayWarned {
			flags = 1
		}
		dst = append(dst, r.Notify, flags)
		dst = appendString(dst, r.ORcpt)
	}
	return dst
}

// dsnFields reads a DSN section (see dsnSection) after its tag into m and
// returns what follows it; ok is false for a malformed section.
func dsnFields(b []byte, m *Message) (rest []byte, ok bool) {
	if len(b) < 1 {
		return nil, false
	}
	m.DSNRet = b[0]
	b = b[1:]
	take := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	if m.EnvID, ok = take(); !ok || m.DSNRet > RetHeaders {
		return nil, false
	}
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if len(b) < 2 || b[1] > 1 {
			return nil, false
		}
		r.Notify, r.DelayWarned = b[0], b[1] == 1
		b = b[2:]
		if r.ORcpt, ok = take(); !ok {
			return nil, false
		}
	}
	return b, true
}

// clearDSN zeroes the DSN fields of m (a value without a DSN section).
func clearDSN(m *Message) {
	m.DSNRet, m.EnvID = 0, ""
	for i := range m.Recipients {
		r := &m.Recipients[i]
		r.Notify, r.ORcpt, r.DelayWarned = 0, "", false
	}
}

// metaReader decodes the variable part of a value; the first error sticks.
type metaReader struct {
	b    []byte
	err  error
	in   *interner // nil: every string is a new allocation
	name string    // what is decoded, for errors; "" is "metadata"
}

// interner shares the strings that repeat across messages (sender, tenant,
// campaign, last reply) during one Scan, so that a million queued messages
// from a few senders hold a few copies, not a million. It stops adding
// entries at its limit.
type interner struct {
	m     map[string]string
	limit int
}

func newInterner(limit int) *interner {
	return &interner{m: make(map[string]string), limit: limit}
}

func (in *interner) intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(in.m) < in.limit {
		in.m[s] = s
	}
	return s
}

// shared is string for values that repeat across messages.
func (r *metaReader) shared(what string) string {
	if r.in == nil {
		return r.string(what)
	}
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	if n == 0 {
		return ""
	}
	s := r.in.intern(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *metaReader) fail(what string) {
	if r.err == nil {
		name := r.name
		if name == "" {
			name = "metadata"
		}
		r.err = corruptf("%s: bad %s", name, what)
	}
	r.b = nil
}

func (r *metaReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) int(what string) int {
	v := r.varint(what)
	if int64(int(v)) != v {
		r.fail(what)
		return 0
	}
	return int(v)
}

func (r *metaReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) string(what string) string {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeMeta decodes an index value into m (whose ID the caller sets from
// the key). Anything malformed, including trailing bytes, is reported as
// ErrCorrupt; it never panics.
func decodeMeta(b []byte, m *Message) error { return decodeMetaShared(b, m, nil, nil) }

// decodeMetaShared is decodeMeta for Scan: repeating strings come from in,
// and a single recipient goes into spare (allocated with m), so that a
// typical message costs few allocations and little memory.
func decodeMetaShared(b []byte, m *Message, in *interner, spare []Recipient) error {
	loc, err := decodeLocation(b)
	if err != nil {
		return err
	}
	m.Segment, m.Offset, m.Length = loc.Segment, loc.Offset, loc.Length
	r := metaReader{b: b[metaFixedLen:], in: in}
	m.Created = fromUnixNano(r.varint("created"))
	m.NextDue = fromUnixNano(r.varint("next due"))
	m.Attempts = r.int("attempts")
	m.Size = r.int("size")
	m.Priority = r.int("priority")
	m.From = r.shared("from")
	m.Tenant = r.shared("tenant")
	m.Campaign = r.shared("campaign")
	n := r.uvarint("recipient count")
	// Every recipient takes at least 3 bytes; a count beyond that is a lie.
	if r.err == nil && (n > maxMetaRcpts || n > uint64(len(r.b))/3) {
		r.fail("recipient count")
	}
	if r.err != nil {
		return r.err
	}
	if n <= uint64(len(spare)) {
		m.Recipients = spare[:n:n]
	} else {
		m.Recipients = make([]Recipient, n)
	}
	for i := range m.Recipients {
		rc := &m.Recipients[i]
		rc.Addr = r.string("recipient")
		if len(r.b) == 0 {
			r.fail("recipient state")
			break
		}
		rc.State = RcptState(r.b[0])
		r.b = r.b[1:]
		if rc.State > Expired {
			r.fail("recipient state")
		}
		rc.Attempts = r.int("recipient attempts")
		rc.LastReply = r.shared("last reply")
	}
	m.setFlags(0)
	clearDSN(m)
	if r.err == nil && len(r.b) != 0 {
		// Absent in spools written before it was added.
		f := r.uvarint("flags")
		if f&^knownFlags != 0 {
			r.fail("flags")
		}
		m.setFlags(f)
	}
	if r.err == nil && len(r.b) != 0 && r.b[0] == dsnSection {
		rest, ok := dsnFields(r.b[1:], m)
		if !ok {
			r.fail("DSN section")
		} else {
			r.b = rest
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return r.err
}

// scanMeta calls fn with the id and value of every m/ key, in id order.
// The slices are valid only during the call.
func scanMeta(db *pebble.DB, fn func(id, value []byte) error) error {
	return scanIndex(db, metaPrefix, metaEnd, true, fn)
}

// scanIndex calls fn with the id (the key after prefix) of every key from
// prefix up to end, in order, and with its value when values is set (nil
// otherwise: reading keys only is cheaper). The slices are valid only
// during the call. An error from fn stops the scan and is returned.
func scanIndex(db *pebble.DB, prefix, end string, values bool, fn func(id, value []byte) error) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: []byte(end)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, []byte(prefix)) {
			continue
		}
		var v []byte
		if values {
			if v, err = it.ValueAndErr(); err != nil {
				it.Close()
				return err
			}
		}
		if err := fn(k[len(prefix):], v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}
