package delivery

import (
	"fmt"
	"sync"
	"time"

	"gannet/mailaddr"
	"gannet/queue"
)

// msgState is the in-memory side of one spooled message. Its metadata is
// kept in one of two forms, guarded by mu:
//
//   - m, the full queue.Message, while the message is being worked on: from
//     the time one of its work items comes due until it waits again. The
//     work items of its different domains are delivered concurrently and
//     share it under mu.
//   - packed (m == nil), a queue.Packed of about 60 bytes, while the message
//     only waits: messages loaded at startup, and a message whose only
//     remaining work item waits for its retry. Nothing else of a packed
//     message is in memory: no work item exists for it, and the scheduler
//     holds the message itself (schedRef.ms), which is split into its work
//     items when it comes due (Loop.dueMessage).
//
// Tenant, campaign and priority never change after Enqueue; they live
// outside mu so that the hot paths (admin rules, egress choice, tenant
// rates, ready-queue lane) read them without unpacking.
type msgState struct {
	mu   sync.Mutex
	id   string
	env  *msgEnv // tenant and campaign, shared between messages
	high bool    // Priority > 0
	// corrupt is set (under mu) when the spool has quarantined the message
	// because its body cannot be read back: its other work items are
	// dropped as they come (Loop.quarantine).
	corrupt bool
	// whole is set (under mu) while the scheduler holds the message itself
	// (schedRef.ms): from Load or the retry of its last domain until that
	// reference comes due, or until an operator's retry splits it sooner
	// (retry.go). A reference that comes due when whole is not set, or
	// before the message's next due time, is stale and ignored.
	whole  bool
	m      *queue.Message // nil while packed
	packed queue.Packed
	// items counts the work items scheduled, ready or in flight; while the
	// whole message is scheduled (not yet split), its destination domains.
	items int
	due   dueList // next attempt per domain with a retry scheduled
}

// dueList is the next attempt per destination domain of one message. Nearly
// every message has one domain, so it is a short slice of pairs rather than
// a map: 40 bytes for one domain instead of a map's ~350, which is most of
// what a deferred message costs in memory besides its packed metadata.
type dueList []domainDue

type domainDue struct {
	domain string
	at     time.Time
}

// set records the next attempt for domain.
func (d *dueList) set(domain string, at time.Time) {
	for i := range *d {
		if (*d)[i].domain == domain {
			(*d)[i].at = at
			return
		}
	}
	*d = append(*d, domainDue{domain, at})
}

// remove forgets domain's next attempt.
func (d *dueList) remove(domain string) {
	for i, e := range *d {
		if e.domain == domain {
			*d = append((*d)[:i], (*d)[i+1:]...)
			if len(*d) == 0 {
				*d = nil
			}
			return
		}
	}
}

// earliest is the soonest next attempt; zero when none is scheduled.
func (d dueList) earliest() time.Time {
	var t time.Time
	for _, e := range d {
		if t.IsZero() || e.at.Before(t) {
			t = e.at
		}
	}
	return t
}

// msgEnv is the part of a message's envelope that never changes and that
// many messages share.
type msgEnv struct {
	tenant, campaign string
}

// maxEnvs bounds the distinct (tenant, campaign) pairs the loop shares;
// beyond it each message gets its own copy (correct, a little larger).
const maxEnvs = 1 << 16

// envTable interns msgEnv values. Its zero value is ready.
type envTable struct {
	mu sync.Mutex
	m  map[msgEnv]*msgEnv
}

func (t *envTable) get(tenant, campaign string) *msgEnv {
	k := msgEnv{tenant, campaign}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[k]; e != nil {
		return e
	}
	e := &k
	if len(t.m) < maxEnvs {
		if t.m == nil {
			t.m = make(map[msgEnv]*msgEnv)
		}
		t.m[k] = e
	}
	return e
}

// newMsgState returns the state of m, holding m itself (not packed).
func (l *Loop) newMsgState(m *queue.Message) *msgState {
	return &msgState{id: m.ID, env: l.envs.get(m.Tenant, m.Campaign), high: m.Priority > 0, m: m}
}

// msg returns the metadata to work on, unpacking it for good when it is
// packed. Call with ms.mu held.
func (ms *msgState) msg(p *queue.Packer) *queue.Message {
	if ms.m == nil {
		m, err := p.Unpacked(ms.id, ms.packed)
		if err != nil {
			// Only the loop's own Packer makes these values.
			panic(fmt.Sprintf("delivery: message %s: %v", ms.id, err))
		}
		ms.m, ms.packed = m, ""
	}
	return ms.m
}

// view returns the metadata for reading only: m, or the packed form
// unpacked into scratch (its strings may be kept; scratch is overwritten
// by the next view). Call with ms.mu held.
func (ms *msgState) view(p *queue.Packer, scratch *queue.Message) *queue.Message {
	if ms.m != nil {
		return ms.m
	}
	if err := p.Unpack(ms.packed, scratch); err != nil {
		panic(fmt.Sprintf("delivery: message %s: %v", ms.id, err))
	}
	scratch.ID = ms.id
	return scratch
}

// pack trades the full metadata for the packed form. Call with ms.mu
// held, and only while no work item of the message is due or in flight.
func (ms *msgState) pack(p *queue.Packer) {
	if ms.m != nil {
		ms.packed = p.Pack(ms.m)
		ms.m = nil
	}
}

// isPacked reports whether the metadata is packed. Call with ms.mu held.
func (ms *msgState) isPacked() bool { return ms.m == nil }

// schedRef is what the schedulers hold: a work item, or a whole message
// that is split into its work items when it comes due. Both nil: a Wake.
type schedRef struct {
	it *workItem
	ms *msgState
}

// countDomains returns the number of distinct destination domains of m's
// pending recipients, the work items m will make; seen is scratch space.
func countDomains(m *queue.Message, seen *[]string) int {
	switch m.Pending() {
	case 0:
		return 0
	case 1:
		return 1
	}
	*seen = (*seen)[:0]
	for i := range m.Recipients {
		if m.Recipients[i].State != queue.Pending {
			continue
		}
		d := mailaddr.Domain(m.Recipients[i].Addr)
		dup := false
		for _, s := range *seen {
			if s == d {
				dup = true
				break
			}
		}
		if !dup {
			*seen = append(*seen, d)
		}
	}
	return len(*seen)
}
