package queue

import (
	"encoding/binary"
	"errors"
	"sync"
)

// Packed is the metadata of one message (everything but its ID) in a
// compact in-memory form: one immutable string, so that a million waiting
// messages are a million small pointer-free objects that the garbage
// collector never scans. It is about a third of the size of a Message with
// its recipients (60–70 bytes for a deferred one-recipient message against
// about 300). A Packer makes and reads it; strings that repeat across
// messages (sender, tenant, campaign, last replies) are stored once in the
// Packer's table and referred to by number. Packed values are meaningful
// only to the Packer that made them.
//
// Layout (integers are varints; "ref" is a uvarint x: x even → table entry
// x/2, x odd → x/2 bytes that follow inline):
//
//	uvarint segment, uvarint offset, uvarint length
//	varint created (Unix ns, 0 = zero time), varint next due, varint attempts,
//	varint size, varint priority
//	ref from, ref tenant, ref campaign
//	uvarint recipient count, then per recipient:
//	uvarint length + bytes addr, byte state, varint attempts, ref last reply
//	uvarint flags (as in the index value: bit 0 REQUIRETLS)
//	then, only for a message with DSN parameters, the index value's DSN
//	section (see dsnSection), its strings inline
type Packed string

// DefaultPackerStrings is the size of a Packer's string table when
// NewPacker is given zero.
const DefaultPackerStrings = 1 << 16

// maxSharedLen is the longest string a Packer puts in its table; longer
// ones (rare: a long last reply) stay inline, so the table's size is
// bounded by its entry limit times this.
const maxSharedLen = 256

// errPacked reports a Packed value that this Packer did not make (or that
// was cut): it never happens for values Pack returned.
var errPacked = errors.New("queue: malformed packed message")

// Packer packs and unpacks message metadata (see Packed). Its table keeps
// every string it shares until the Packer is dropped, up to its entry
// limit; after that, new strings are stored inline in each Packed value.
// It is safe for concurrent use.
type Packer struct {
	mu    sync.RWMutex
	index map[string]uint32
	strs  []string
	limit int
}

// NewPacker returns a Packer whose table holds up to limit strings
// (DefaultPackerStrings when limit <= 0).
func NewPacker(limit int) *Packer {
	if limit <= 0 {
		limit = DefaultPackerStrings
	}
	return &Packer{index: make(map[string]uint32), limit: limit}
}

// Shared returns the number of strings in the table.
func (p *Packer) Shared() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.strs)
}

// ref returns the table number of s. With add (p.mu held for writing) it
// adds s if there is room; without (p.mu held for reading) it reports in
// miss that s could be added.
func (p *Packer) ref(s string, add bool) (n uint32, ok, miss bool) {
	if len(s) == 0 || len(s) > maxSharedLen {
		return 0, false, false
	}
	if n, ok := p.index[s]; ok {
		return n, true, false
	}
	if len(p.strs) >= p.limit {
		return 0, false, false
	}
	if !add {
		return 0, false, true
	}
	n = uint32(len(p.strs))
	// s may be a substring of something larger (a packed value, a
	// decoded record): keep a copy of its own.
	s = string([]byte(s))
	p.strs = append(p.strs, s)
	p.index[s] = n
	return n, true, false
}

// appendRef appends the ref of s (see Packed); miss reports a string that
// could have been added to the table.
func (p *Packer) appendRef(b []byte, s string, add bool, miss *bool) []byte {
	n, ok, m := p.ref(s, add)
	if m {
		*miss = true
	}
	if ok {
		return binary.AppendUvarint(b, uint64(n)<<1)
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<1|1)
	return append(b, s...)
}

// appendPacked appends the packed form of m; see Packed.
func (p *Packer) appendPacked(b []byte, m *Message, add bool, miss *bool) []byte {
	b = binary.AppendUvarint(b, m.Segment)
	b = binary.AppendUvarint(b, uint64(m.Offset))
	b = binary.AppendUvarint(b, uint64(m.Length))
	b = binary.AppendVarint(b, unixNano(m.Created))
	b = binary.AppendVarint(b, unixNano(m.NextDue))
	b = binary.AppendVarint(b, int64(m.Attempts))
	b = binary.AppendVarint(b, int64(m.Size))
	b = binary.AppendVarint(b, int64(m.Priority))
	b = p.appendRef(b, m.From, add, miss)
	b = p.appendRef(b, m.Tenant, add, miss)
	b = p.appendRef(b, m.Campaign, add, miss)
	b = binary.AppendUvarint(b, uint64(len(m.Recipients)))
	for i := range m.Recipients {
		r := &m.Recipients[i]
		b = appendString(b, r.Addr)
		b = append(b, byte(r.State))
		b = binary.AppendVarint(b, int64(r.Attempts))
		b = p.appendRef(b, r.LastReply, add, miss)
	}
	b = binary.AppendUvarint(b, m.flags())
	return appendDSN(b, m)
}

// Pack returns the packed form of m's metadata (m.ID is not included: the
// caller keeps it). Strings already in the table cost one read lock; new
// ones are added under the write lock.
func (p *Packer) Pack(m *Message) Packed {
	var arr [192]byte
	miss := false
	p.mu.RLock()
	b := p.appendPacked(arr[:0], m, false, &miss)
	p.mu.RUnlock()
	if miss {
		p.mu.Lock()
		b = p.appendPacked(arr[:0], m, true, &miss)
		p.mu.Unlock()
	}
	return Packed(b)
}

// packedReader reads a Packed value; the first error sticks.
type packedReader struct {
	s    Packed
	strs []string // the Packer's table, read under its lock
	bad  bool
}

func (r *packedReader) uvarint() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(r.s) == 0 {
			break
		}
		c := r.s[0]
		r.s = r.s[1:]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.bad = true
	r.s = ""
	return 0
}

func (r *packedReader) varint() int64 {
	u := r.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (r *packedReader) int() int {
	v := r.varint()
	if int64(int(v)) != v {
		r.bad = true
	}
	return int(v)
}

// inline returns the next n bytes, a substring of the value (no copy).
func (r *packedReader) inline(n uint64) string {
	if n > uint64(len(r.s)) {
		r.bad = true
		r.s = ""
		return ""
	}
	s := string(r.s[:n])
	r.s = r.s[n:]
	return s
}

func (r *packedReader) ref() string {
	x := r.uvarint()
	if x&1 == 1 {
		return r.inline(x >> 1)
	}
	if x>>1 >= uint64(len(r.strs)) {
		r.bad = true
		return ""
	}
	return r.strs[x>>1]
}

// Unpack fills m (all but m.ID) from pk. m.Recipients is reused when its
// capacity suffices, so unpacking into the same scratch Message again and
// again allocates nothing; the strings of m share pk's or the table's
// memory and may be kept. A value this Packer did not make yields an
// error (never a panic).
func (p *Packer) Unpack(pk Packed, m *Message) error {
	p.mu.RLock()
	r := packedReader{s: pk, strs: p.strs}
	p.mu.RUnlock()
	m.Segment = r.uvarint()
	m.Offset = int64(r.uvarint())
	m.Length = int64(r.uvarint())
	m.Created = fromUnixNano(r.varint())
	m.NextDue = fromUnixNano(r.varint())
	m.Attempts = r.int()
	m.Size = r.int()
	m.Priority = r.int()
	m.From = r.ref()
	m.Tenant = r.ref()
	m.Campaign = r.ref()
	n := r.uvarint()
	// Every recipient takes at least 4 bytes.
	if r.bad || n > uint64(len(r.s))/4 {
		return errPacked
	}
	rs := m.Recipients[:0]
	if uint64(cap(rs)) < n {
		rs = make([]Recipient, n)
	}
	rs = rs[:n]
	for i := range rs {
		rc := &rs[i]
		rc.Addr = r.inline(r.uvarint())
		if len(r.s) == 0 {
			r.bad = true
			break
		}
		rc.State = RcptState(r.s[0])
		r.s = r.s[1:]
		rc.Attempts = r.int()
		rc.LastReply = r.ref()
		if r.bad || rc.State > Expired {
			r.bad = true
			break
		}
	}
	m.Recipients = rs
	f := r.uvarint()
	if f&^knownFlags != 0 {
		r.bad = true
	}
	m.setFlags(f)
	clearDSN(m)
	if !r.bad && len(r.s) != 0 && r.s[0] == dsnSection {
		rest, ok := dsnFields([]byte(r.s[1:]), m)
		if !ok {
			return errPacked
		}
		r.s = r.s[len(r.s)-len(rest):]
	}
	if r.bad || len(r.s) != 0 {
		return errPacked
	}
	return nil
}

// Unpacked returns a new Message with id and the metadata of pk, allocated
// together with its first recipient.
func (p *Packer) Unpacked(id string, pk Packed) (*Message, error) {
	x := &struct {
		m   Message
		one [1]Recipient
	}{}
	x.m.ID = id
	x.m.Recipients = x.one[:0:1]
	if err := p.Unpack(pk, &x.m); err != nil {
		return nil, err
	}
	return &x.m, nil
}
