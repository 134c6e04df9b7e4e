package suppress

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gannet/mailaddr"
)

// Store is where the list is kept (*queue.Spool).
type Store interface {
	PutSuppression(key string, value []byte, sync bool) error
	DeleteSuppression(key string) error
	Suppression(key string) (value []byte, ok bool, err error)
	Suppressions(from string, fn func(key, value []byte) error) error
}

// Sources of entries (Entry.Source). The feedback listener uses
// SourceOOB and SourceComplaint.
const (
	SourceBounce    = "bounce"    // a hard bounce during delivery
	SourceOOB       = "oob"       // an asynchronous bounce (DSN)
	SourceComplaint = "complaint" // a feedback report (ARF)
	SourceAdmin     = "admin"     // the admin API, gannet suppress add
	SourceImport    = "import"    // gannet suppress import
	SourceErase     = "erase"     // gannet erase
)

// Limits on what an entry holds.
const (
	MaxAddress = 320 // RFC 5321 §4.5.3.1: 64 + "@" + 255
	MaxReason  = 512 // longer reasons are cut
	MaxSource  = 32
	MaxTenant  = 128
)

// Entry is one suppressed address. Tenant "" is the global list.
type Entry struct {
	Tenant  string    `json:"tenant"`
	Address string    `json:"address"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source"`
	Created time.Time `json:"created"`
	// Expires is when the entry stops counting ([suppression] ttl after
	// Created); zero: never.
	Expires time.Time `json:"expires,omitzero"`
}

// ErrBadAddress is returned for an address that cannot be on the list:
// empty, without a local part and a domain, too long, or not UTF-8.
var ErrBadAddress = errors.New("not a mail address")

// slot is what memory holds for the entries of one hash: how many there
// are (more than one only when two keys share the hash) and, for one,
// its creation time (Unix seconds).
type slot struct {
	created int64
	n       uint32
	erased  bool // an erasure request's entry (SourceErase): records name it by its hash
}

// List is the suppression list. Its methods are safe for concurrent use.
type List struct {
	store Store
	now   func() time.Time
	seed  maphash.Seed
	ttl   atomic.Int64 // nanoseconds; 0: entries do not expire
	// onAdd is called with the source of every entry added or renewed
	// (SetOnAdd); nil: none.
	onAdd func(source string)
	// onChange is told of every entry added, renewed or removed here
	// (SetOnChange, shared.go); nil: none.
	onChange func(Change)

	// wmu makes writers (put, Remove) one at a time, so that the store
	// and memory agree; mu guards the map only, for as long as a map
	// operation takes, so that a lookup never waits for a disk write.
	wmu    sync.Mutex
	mu     sync.RWMutex
	filter map[uint64]slot
	count  int          // entries in memory (expired ones until swept)
	size   atomic.Int64 // count, read without the lock: an empty list costs nothing
}

// New returns an empty list kept in store; Load reads what store holds.
// now is the clock (nil: time.Now).
func New(store Store, now func() time.Time) *List {
	if now == nil {
		now = time.Now
	}
	return &List{store: store, now: now, seed: maphash.MakeSeed(), filter: make(map[uint64]slot)}
}

// SetOnAdd sets a function called with the source of every entry added
// or renewed (the engine counts them). Call it before the list is used.
func (l *List) SetOnAdd(fn func(source string)) { l.onAdd = fn }

// SetTTL sets how long entries count after they were created (0: for
// ever). It applies to every entry, old and new, from the next lookup.
func (l *List) SetTTL(d time.Duration) { l.ttl.Store(int64(d)) }

// Load reads the whole list from the store into memory.
func (l *List) Load() (int, error) {
	n := 0
	err := l.store.Suppressions("", func(k, v []byte) error {
		tenant, addr, ok := splitKey(string(k))
		if !ok {
			return nil // not ours to judge: skipped
		}
		created, source, _, err := decodeValue(v)
		if err != nil {
			return nil
		}
		l.mu.Lock()
		l.insertLocked(l.hash(tenant, addr), created, source == SourceErase)
		l.mu.Unlock()
		n++
		return nil
	})
	return n, err
}

// Len returns the number of entries held (expired ones until swept).
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.count
}

// hash is the filter key of (tenant, folded address).
func (l *List) hash(tenant, addr string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(tenant)
	h.WriteByte(0)
	h.WriteString(addr)
	return h.Sum64()
}

func (l *List) insertLocked(h uint64, created int64, erased bool) {
	s := l.filter[h]
	s.n++
	s.created = max(s.created, created)
	s.erased = s.erased || erased
	l.filter[h] = s
	l.count++
	l.size.Store(int64(l.count))
}

func (l *List) removeLocked(h uint64) {
	s, ok := l.filter[h]
	if !ok {
		return
	}
	if s.n <= 1 {
		delete(l.filter, h)
	} else {
		s.n--
		l.filter[h] = s
	}
	l.count--
	l.size.Store(int64(l.count))
}

// Suppressed reports whether mail of tenant to addr must not be sent: the
// address is on the tenant's list or on the global list, and the entry
// has not expired. It reads memory only (but for a hash two entries
// share) and does not allocate for an address already folded.
func (l *List) Suppressed(tenant, addr string) bool {
	_, ok := l.Match(tenant, addr)
	return ok
}

// Match is Suppressed that also says which list holds the entry: "" the
// global list (which is looked at first), else tenant.
func (l *List) Match(tenant, addr string) (list string, ok bool) {
	if l.size.Load() == 0 {
		return "", false
	}
	addr = mailaddr.Fold(addr)
	cutoff := l.cutoff()
	if l.has("", addr, cutoff) {
		return "", true
	}
	if tenant != "" && l.has(tenant, addr, cutoff) {
		return tenant, true
	}
	return "", false
}

// cutoff is the creation time (Unix seconds) before which entries have
// expired; the smallest int64 without a ttl.
func (l *List) cutoff() int64 {
	ttl := l.ttl.Load()
	if ttl <= 0 {
		return -1 << 63
	}
	return l.now().Add(-time.Duration(ttl)).Unix()
}

// Erased reports whether addr is on the global list by an erasure
// request (SourceErase): what records about it must name by its hash.
func (l *List) Erased(addr string) bool {
	if l.size.Load() == 0 {
		return false
	}
	l.mu.RLock()
	s, ok := l.filter[l.hash("", mailaddr.Fold(addr))]
	l.mu.RUnlock()
	return ok && s.erased
}

func (l *List) has(tenant, addr string, cutoff int64) bool {
	h := l.hash(tenant, addr)
	l.mu.RLock()
	s, ok := l.filter[h]
	l.mu.RUnlock()
	if !ok {
		return false
	}
	if s.n == 1 {
		return s.created >= cutoff
	}
	e, found, err := l.get(tenant, addr)
	if err != nil {
		return true // the store failed: better not to send than to send
	}
	return found && e.Created.Unix() >= cutoff
}

// Add puts address on tenant's list ("" the global list) with reason and
// source (SourceBounce, SourceOOB, SourceComplaint, …). Adding an address
// already listed renews it (new reason, source and creation time).
func (l *List) Add(tenant, address, reason, source string) error {
	sync := source != SourceBounce && source != SourceOOB && source != SourceComplaint
	_, err := l.put(tenant, address, reason, source, sync, true)
	return err
}

// put stores one entry, created now, and returns it; count: it is
// counted (SetOnAdd) and told to OnChange.
func (l *List) put(tenant, address, reason, source string, sync, count bool) (Entry, error) {
	return l.putAt(tenant, address, reason, source, l.now().Truncate(time.Second), sync, count, count)
}

// putAt stores one entry created at created and returns it; count: it is
// counted (SetOnAdd); tell: it is told to OnChange.
func (l *List) putAt(tenant, address, reason, source string, created time.Time, sync, count, tell bool) (Entry, error) {
	addr, err := checkAddress(address)
	if err != nil {
		return Entry{}, err
	}
	tenant = strings.TrimSpace(tenant)
	if len(tenant) > MaxTenant || strings.ContainsRune(tenant, 0) {
		return Entry{}, fmt.Errorf("tenant %q: not a tenant name", tenant)
	}
	if len(source) > MaxSource {
		source = source[:MaxSource]
	}
	e := Entry{Tenant: tenant, Address: addr, Reason: cut(reason, MaxReason), Source: source, Created: created}
	key := makeKey(tenant, addr)
	h := l.hash(tenant, addr)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.RLock()
	_, had := l.filter[h]
	l.mu.RUnlock()
	existed := false
	if had {
		_, existed, err = l.store.Suppression(key)
		if err != nil {
			return Entry{}, err
		}
	}
	if err := l.store.PutSuppression(key, encodeValue(e), sync); err != nil {
		return Entry{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if existed {
		s := l.filter[h]
		s.created = max(s.created, e.Created.Unix())
		s.erased = s.erased || source == SourceErase
		l.filter[h] = s
	} else {
		l.insertLocked(h, e.Created.Unix(), source == SourceErase)
	}
	if count && l.onAdd != nil {
		l.onAdd(source)
	}
	if fn := l.onChange; tell && fn != nil {
		fn(Change{Tenant: tenant, Address: addr, Reason: e.Reason, Source: source, Created: e.Created.Unix()})
	}
	return e, nil
}

// Remove takes address off tenant's list ("" the global list) and
// reports whether it was there.
func (l *List) Remove(tenant, address string) (bool, error) {
	return l.remove(strings.TrimSpace(tenant), mailaddr.Fold(address), 1<<62, true)
}

// remove takes addr off tenant's list if its entry was created at or
// before createdBy (Unix seconds); tell: it is told to OnChange.
func (l *List) remove(tenant, addr string, createdBy int64, tell bool) (bool, error) {
	key := makeKey(tenant, addr)
	h := l.hash(tenant, addr)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.RLock()
	_, had := l.filter[h]
	l.mu.RUnlock()
	if !had {
		return false, nil
	}
	v, found, err := l.store.Suppression(key)
	if err != nil || !found {
		return false, err
	}
	if created, _, _, err := decodeValue(v); err == nil && created > createdBy {
		return false, nil // added again since
	}
	if err := l.store.DeleteSuppression(key); err != nil {
		return false, err
	}
	l.mu.Lock()
	l.removeLocked(h)
	l.mu.Unlock()
	if fn := l.onChange; tell && fn != nil {
		fn(Change{Tenant: tenant, Address: addr, Removed: true})
	}
	return true, nil
}

// Get returns the entry of address on tenant's list ("" the global
// list), expired or not.
func (l *List) Get(tenant, address string) (Entry, bool, error) {
	return l.get(strings.TrimSpace(tenant), mailaddr.Fold(address))
}

func (l *List) get(tenant, addr string) (Entry, bool, error) {
	v, ok, err := l.store.Suppression(makeKey(tenant, addr))
	if err != nil || !ok {
		return Entry{}, false, err
	}
	e, err := l.entry(tenant, addr, v)
	return e, err == nil, err
}

// entry decodes a stored value.
func (l *List) entry(tenant, addr string, v []byte) (Entry, error) {
	created, source, reason, err := decodeValue(v)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Tenant: tenant, Address: addr, Reason: reason, Source: source, Created: time.Unix(created, 0).UTC()}
	if ttl := time.Duration(l.ttl.Load()); ttl > 0 {
		e.Expires = e.Created.Add(ttl)
	}
	return e, nil
}

// Filter chooses entries to list or export.
type Filter struct {
	// Tenant: only this tenant's entries; with AllTenants false and Tenant
	// "", only the global list.
	Tenant     string
	AllTenants bool
	// Address: only entries whose address contains this (folded).
	Address string
	// After: entries after this cursor (Cursor of the last one listed).
	After string
}

// Cursor names e's place in the list order (tenant, then address), for
// Filter.After: opaque, URL-safe.
func (e *Entry) Cursor() string {
	return base64.RawURLEncoding.EncodeToString([]byte(makeKey(e.Tenant, e.Address)))
}

// ErrBadCursor is returned by Each for a Filter.After that no Cursor
// made.
var ErrBadCursor = errors.New("not a cursor of this list")

// Each calls fn with every entry f chooses that has not expired, in order
// (the global list first, then by tenant, then by address), until fn
// returns false. It reads the store as it goes: an export of any size
// holds one entry at a time.
func (l *List) Each(f Filter, fn func(Entry) bool) error {
	from := ""
	if !f.AllTenants {
		from = f.Tenant + "\x00"
	}
	if f.After != "" {
		after, err := base64.RawURLEncoding.DecodeString(f.After)
		if err != nil || !strings.Contains(string(after), "\x00") {
			return ErrBadCursor
		}
		if string(after) >= from {
			from = string(after) + "\x00" // the first key after the cursor
		}
	}
	want := mailaddr.Fold(f.Address)
	cutoff := l.cutoff()
	stop := errors.New("stop")
	err := l.store.Suppressions(from, func(k, v []byte) error {
		tenant, addr, ok := splitKey(string(k))
		if !ok {
			return nil
		}
		if !f.AllTenants && tenant != f.Tenant {
			return stop // keys are sorted: the tenant's entries are past
		}
		if want != "" && !strings.Contains(addr, want) {
			return nil
		}
		e, err := l.entry(tenant, addr, v)
		if err != nil || e.Created.Unix() < cutoff {
			return nil
		}
		if !fn(e) {
			return stop
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}

// Sweep removes the entries that have expired and returns how many.
func (l *List) Sweep() (int, error) {
	cutoff := l.cutoff()
	if l.ttl.Load() <= 0 {
		return 0, nil
	}
	var expired []string
	err := l.store.Suppressions("", func(k, v []byte) error {
		created, _, _, err := decodeValue(v)
		if err == nil && created < cutoff {
			expired = append(expired, string(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range expired {
		tenant, addr, ok := splitKey(k)
		if !ok {
			continue
		}
		// Removed only if still expired: an add meanwhile renewed it.
		if e, found, err := l.get(tenant, addr); err != nil || !found || e.Created.Unix() >= cutoff {
			continue
		}
		if ok, err := l.Remove(tenant, addr); err != nil {
			return n, err
		} else if ok {
			n++
		}
	}
	return n, nil
}

// checkAddress folds address and says what is wrong with it.
func checkAddress(address string) (string, error) {
	if !utf8.ValidString(address) {
		return "", fmt.Errorf("%q: %w", cut(address, 64), ErrBadAddress)
	}
	addr := mailaddr.Fold(address)
	local, domain := mailaddr.Split(addr)
	switch {
	case local == "" || domain == "" || len(addr) > MaxAddress:
		return "", fmt.Errorf("%q: %w", cut(address, 64), ErrBadAddress)
	case strings.ContainsAny(addr, " \t\r\n,<>\x00"):
		return "", fmt.Errorf("%q: %w", cut(address, 64), ErrBadAddress)
	}
	return addr, nil
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func makeKey(tenant, addr string) string { return tenant + "\x00" + addr }

func splitKey(k string) (tenant, addr string, ok bool) {
	return strings.Cut(k, "\x00")
}

// encodeValue is the stored form of an entry (its key holds tenant and
// address): a version byte (1), the creation time (varint Unix seconds),
// the source (uvarint length, bytes), then the reason to the end.
func encodeValue(e Entry) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+1+len(e.Source)+len(e.Reason))
	b = append(b, 1)
	b = binary.AppendVarint(b, e.Created.Unix())
	b = binary.AppendUvarint(b, uint64(len(e.Source)))
	b = append(b, e.Source...)
	return append(b, e.Reason...)
}

var errBadValue = errors.New("suppress: bad stored value")

func decodeValue(v []byte) (created int64, source, reason string, err error) {
	if len(v) < 1 || v[0] != 1 {
		return 0, "", "", errBadValue
	}
	v = v[1:]
	created, n := binary.Varint(v)
	if n <= 0 {
		return 0, "", "", errBadValue
	}
	v = v[n:]
	sl, n := binary.Uvarint(v)
	if n <= 0 || sl > uint64(len(v)-n) {
		return 0, "", "", errBadValue
	}
	v = v[n:]
	return created, string(v[:sl]), string(v[sl:]), nil
}
