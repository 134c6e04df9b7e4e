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

// appendLine appends r's journal line: the header, then r encoded by
// AppendJSON (with its newline).
func appendLine(b []byte, r *logrec.Record) []byte {
	b = strconv.AppendInt(b, r.Timestamp.Unix(), 10)
	b = append(b, '\t')
	b = appendField(b, string(r.Type))
	b = appendField(b, r.Tenant)
	b = appendField(b, r.Campaign)
	b = appendField(b, r.UUID)
	return r.AppendJSON(b)
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

// entry is one record read back from a journal.
type entry struct {
	time     time.Time
	typ      string
	tenant   string
	campaign string
	uuid     string
	json     []byte // the record, without a newline
}

var errBadLine = errors.New("events: malformed journal line")

// parseLine decodes a journal line (without its newline); the entry keeps
// its own copy of the bytes.
func parseLine(line []byte) (entry, error) {
	var f [5]string
	rest := line
	for i := range f {
		k := bytes.IndexByte(rest, '\t')
		if k < 0 {
			return entry{}, errBadLine
		}
		f[i] = string(rest[:k])
		rest = rest[k+1:]
	}
	sec, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return entry{}, errBadLine
	}
	return entry{time: time.Unix(sec, 0), typ: f[1], tenant: f[2], campaign: f[3], uuid: f[4],
		json: bytes.Clone(rest)}, nil
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
		h.Write([]byte(e.uuid))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// oldest is the time of the oldest record of b.
func (b *batch) oldest() time.Time {
	t := b.entries[0].time
	for _, e := range b.entries[1:] {
		if e.time.Before(t) {
			t = e.time
		}
	}
	return t
}

// routingKey fills in a routing key template: {type}, {tenant} and
// {campaign} become the record's values.
func routingKey(tmpl string, e *entry) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	return strings.NewReplacer("{type}", e.typ, "{tenant}", e.tenant, "{campaign}", e.campaign).Replace(tmpl)
}
