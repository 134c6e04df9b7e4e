package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"gannet/engine/logrec"
)

// NewUUID returns a random UUID (RFC 9562 version 4) in its usual text
// form. It names one log record; uniqueness, not secrecy, is what counts,
// so it comes from the runtime's fast generator (ChaCha8, seeded from the
// operating system).
func NewUUID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// A journal line is one record: a header of five tab-separated fields the
// shipper needs without decoding the JSON (Unix time, type, tenant,
// campaign, uuid), a tab, then the record as logrec writes it:
//
//	1767000000\tDelivery\tacme\tspring\t5f0c7a52-…\t{"type":"Delivery",…}\n
//
// Tabs and newlines in the header fields are replaced by spaces.

// appendLine appends r's journal line: the header, then json, r encoded
// by AppendJSON (with its newline).
func appendLine(b []byte, r *logrec.Record, json []byte) []byte {
	b = strconv.AppendInt(b, r.Timestamp.Unix(), 10)
	b = append(b, '\t')
	b = appendField(b, string(r.Type))
	b = appendField(b, r.Tenant)
	b = appendField(b, r.Campaign)
	b = appendField(b, r.UUID)
	return append(b, json...)
}

func appendField(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\t' || c == '\n' || c == '\r' {
			c = ' '
		}
		b = append(b, c)
	}
	return append(b, '\t')
}

// header is a journal line's header fields, pointing into the line.
type header struct {
	unix                        []byte
	typ, tenant, campaign, uuid []byte
}

// parse splits line into its header and returns the rest (the record's
// JSON); ok is false when the line has fewer than five tabs.
func (h *header) parse(line []byte) (rest []byte, ok bool) {
	f := [5]*[]byte{&h.unix, &h.typ, &h.tenant, &h.campaign, &h.uuid}
	rest = line
	for _, p := range f {
		k := bytes.IndexByte(rest, '\t')
		if k < 0 {
			return nil, false
		}
		*p = rest[:k]
		rest = rest[k+1:]
	}
	return rest, true
}

// entry is one record read back from the journal; its fields point into
// the reader's buffer.
type entry struct {
	header
	sec  int64  // when the record was written, Unix seconds
	json []byte // the record, without a newline
}

var errBadLine = errors.New("events: malformed journal line")

// parseLine decodes a journal line (without its newline); the entry
// points into line.
func parseLine(line []byte) (entry, error) {
	var e entry
	rest, ok := e.header.parse(line)
	if !ok {
		return entry{}, errBadLine
	}
	if len(e.unix) == 0 || len(e.unix) > 18 {
		return entry{}, errBadLine
	}
	for _, c := range e.unix {
		if c < '0' || c > '9' {
			return entry{}, errBadLine
		}
		e.sec = e.sec*10 + int64(c-'0')
	}
	e.json = rest
	return e, nil
}

// batch is what one attempt ships: records in journal order.
type batch struct {
	entries []entry
	key     string // Idempotency-Key: the record's uuid, or batchKey
}

// batchKey names a batch by its records: the first 32 hex digits of the
// SHA-256 of their uuids joined by commas. A batch retried (after a
// restart too: the journal keeps its bounds) has the same records, so the
// same key.
func batchKey(es []entry) string {
	h := sha256.New()
	for i, e := range es {
		if i > 0 {
			h.Write([]byte{','})
		}
		h.Write(e.uuid)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// oldest is the time of the oldest record of b.
func (b *batch) oldest() time.Time {
	t := b.entries[0].sec
	for _, e := range b.entries[1:] {
		t = min(t, e.sec)
	}
	return time.Unix(t, 0)
}

// routingKey fills in a routing key template: {type}, {tenant} and
// {campaign} become the record's values.
func routingKey(tmpl string, e *entry) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	return strings.NewReplacer("{type}", string(e.typ), "{tenant}", string(e.tenant), "{campaign}", string(e.campaign)).Replace(tmpl)
}
