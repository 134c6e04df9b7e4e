package suppress

import (
	"strings"
	"time"

	"gannet/mailaddr"
)

// Sharing the list with the other nodes of a cluster (the engine wires it
// to engine/cluster): every entry added, renewed or removed here is told
// to the function SetOnChange sets; the entries added and removed on the
// other nodes come in through ApplyAdd and ApplyRemove, which store them
// as an add here does (not synced: the cluster has them) and tell nothing,
// so that nothing echoes. An entry is the newer by its creation time: an
// add older than the entry held here, or a removal of an entry added here
// since, changes nothing.

// Change is an entry added or renewed (Removed false) or removed here.
type Change struct {
	Tenant  string
	Address string // folded
	Reason  string
	Source  string
	Created int64 // Unix seconds; an add
	Removed bool
}

// SetOnChange sets the function told of every change made here, at once
// and with the list's writes held back meanwhile: it must return quickly.
// Call it before the list is used.
func (l *List) SetOnChange(fn func(Change)) { l.onChange = fn }

// ApplyAdd puts an entry made on another node on the list, unless the
// entry held here is as new.
func (l *List) ApplyAdd(c Change) error {
	tenant, addr := strings.TrimSpace(c.Tenant), mailaddr.Fold(c.Address)
	if l.newerHere(tenant, addr, c.Created) {
		return nil
	}
	_, err := l.putAt(tenant, addr, c.Reason, c.Source, time.Unix(c.Created, 0), false, false, false)
	return err
}

// ApplyRemove takes off the list an entry removed on another node at
// removed (Unix seconds), unless it was added here after that.
func (l *List) ApplyRemove(tenant, address string, removed int64) error {
	_, err := l.remove(strings.TrimSpace(tenant), mailaddr.Fold(address), removed, false)
	return err
}

// newerHere reports whether the entry of (tenant, addr) held here was
// created at or after created; from memory but for a hash two entries
// share.
func (l *List) newerHere(tenant, addr string, created int64) bool {
	l.mu.RLock()
	s, ok := l.filter[l.hash(tenant, addr)]
	l.mu.RUnlock()
	switch {
	case !ok:
		return false
	case s.n == 1:
		return s.created >= created
	}
	e, found, err := l.get(tenant, addr)
	return err == nil && found && e.Created.Unix() >= created
}
