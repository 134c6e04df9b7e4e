package delivery

import (
	"container/heap"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"gannet/engine/outbound"
	"gannet/mailaddr"
	"gannet/queue"
	"gannet/smtpwire"
)

// The queryable queue (gannet queue list, GET /api/admin/queue/v1) and the
// operator's actions on what it finds (queue bounce, queue delete).
//
// A list walks a snapshot of the loop's messages — the table is copied
// under the loop's lock (8 bytes a message), then each message is looked at
// under its own lock only, unpacked into scratch space — so delivery goes
// on while it runs and no lock is held for the whole walk. Paging is by id:
// a page is the Limit smallest matching ids after the cursor (a bounded
// heap, not a sort of every match), and Next is the last id of the page
// when more follow.

// Message states a list filters on and shows.
const (
	StateScheduled = "scheduled" // waiting for its (first or next) attempt
	StateReady     = "ready"     // due: resolving, in a site's ready queue, or in a transaction
	StateSuspended = "suspended" // held by an admin suspension
	StateHeld      = "held"      // held by an admin hold (queue hold)
)

// Group-by keys of a list.
var groupKeys = []string{"domain", "site", "tenant", "campaign", "sender"}

// DefaultListLimit is the page size when ListFilter.Limit is zero;
// MaxListLimit the largest page.
const (
	DefaultListLimit = 100
	MaxListLimit     = 10000
)

// ListFilter chooses queued messages. Every non-empty field must match; a
// message matches when its sender, tenant, campaign, attempts and age do
// and at least one pending recipient matches Domain, Site and Recipient.
type ListFilter struct {
	Domain      string        // destination domain, case-insensitive
	Site        string        // MX site (as the summary names it), case-insensitive
	Tenant      string        // exact
	Campaign    string        // exact
	Sender      string        // envelope sender, case-insensitive
	Recipient   string        // substring of a pending recipient, case-insensitive
	MinAttempts int           // at least this many delivery attempts
	Older       time.Duration // received at least this long ago
	State       string        // StateScheduled, StateReady, StateSuspended, StateHeld; "": any
	Limit       int           // page size (DefaultListLimit when 0); -1: no limit (actions)
	After       string        // cursor: ids after this one
	GroupBy     string        // domain, site, tenant, campaign or sender: counts instead of messages
}

// Normalize trims and lower-cases what matches case-insensitively.
func (f ListFilter) Normalize() ListFilter {
	f.Domain = mailaddr.CanonicalDomain(strings.TrimSpace(f.Domain))
	f.Site = strings.ToLower(strings.TrimSpace(f.Site))
	f.Tenant = strings.TrimSpace(f.Tenant)
	f.Campaign = strings.TrimSpace(f.Campaign)
	f.Sender = strings.ToLower(strings.TrimSpace(f.Sender))
	f.Recipient = strings.ToLower(strings.TrimSpace(f.Recipient))
	f.State = strings.ToLower(strings.TrimSpace(f.State))
	f.GroupBy = strings.ToLower(strings.TrimSpace(f.GroupBy))
	f.After = strings.TrimSpace(f.After)
	return f
}

// Validate says what is wrong with a filter (the admin API answers 422).
func (f ListFilter) Validate() error {
	switch f.State {
	case "", StateScheduled, StateReady, StateSuspended, StateHeld:
	default:
		return fmt.Errorf("state %q: want scheduled, ready, suspended, held or dead", f.State)
	}
	if f.GroupBy != "" && !containsString(groupKeys, f.GroupBy) {
		return fmt.Errorf("group_by %q: want one of %s", f.GroupBy, strings.Join(groupKeys, ", "))
	}
	switch {
	case f.MinAttempts < 0:
		return fmt.Errorf("min_attempts %d: must not be negative", f.MinAttempts)
	case f.Older < 0:
		return fmt.Errorf("older %s: must not be negative", f.Older)
	case f.Limit < -1 || f.Limit > MaxListLimit:
		return fmt.Errorf("limit %d: want 1 to %d", f.Limit, MaxListLimit)
	}
	return nil
}

// IsZero reports whether the filter chooses nothing in particular (every
// message); the actions refuse it.
func (f ListFilter) IsZero() bool {
	return f.Domain == "" && f.Site == "" && f.Tenant == "" && f.Campaign == "" && f.Sender == "" &&
		f.Recipient == "" && f.MinAttempts == 0 && f.Older == 0 && f.State == ""
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ListedMessage is one message of a list.
type ListedMessage struct {
	ID       string
	Sender   string
	Tenant   string
	Campaign string
	Created  time.Time
	NextDue  time.Time // zero: due now (or in work)
	Attempts int
	Size     int
	State    string
	// Recipients are the pending recipients.
	Recipients []ListedRecipient
}

// ListedRecipient is a pending recipient of a listed message.
type ListedRecipient struct {
	Addr      string
	Attempts  int
	LastReply string
}

// GroupCount is one group of a list with GroupBy: the messages with a
// matching pending recipient in the group, and those recipients.
type GroupCount struct {
	Key        string
	Messages   int
	Recipients int
}

// ListResult is a page of a list, or its groups.
type ListResult struct {
	Messages []ListedMessage
	// Next is the cursor of the next page (ListFilter.After); "" when this
	// page is the last.
	Next string
	// Matched counts the matching messages after the cursor (with
	// GroupBy: all of them).
	Matched int
	// Groups, with GroupBy, by messages (most first), then key.
	Groups []GroupCount
}

// List returns a page of the queued messages f matches (f normalized and
// valid), or with f.GroupBy their counts by group. A filter on or a group
// by site finds the site of each domain through the Router (cached), so
// ctx bounds those lookups; when ctx ends, the walk stops and returns what
// it found.
func (l *Loop) List(ctx context.Context, f ListFilter) ListResult {
	limit := f.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	var res ListResult
	groups := map[string]*GroupCount{}
	page := &idHeap{}
	l.walk(ctx, f, f.GroupBy == "", func(ms *msgState, keys []groupHit) {
		res.Matched++
		if f.GroupBy != "" {
			for _, k := range keys {
				g := groups[k.key]
				if g == nil {
					g = &GroupCount{Key: k.key}
					groups[k.key] = g
				}
				g.Messages++
				g.Recipients += k.rcpts
			}
			return
		}
		if limit < 0 || page.Len() <= limit {
			heap.Push(page, ms)
		} else if ms.id < (*page)[0].id {
			(*page)[0] = ms
			heap.Fix(page, 0)
		}
	})
	if f.GroupBy != "" {
		for _, g := range groups {
			res.Groups = append(res.Groups, *g)
		}
		sort.Slice(res.Groups, func(i, j int) bool {
			a, b := res.Groups[i], res.Groups[j]
			if a.Messages != b.Messages {
				return a.Messages > b.Messages
			}
			return a.Key < b.Key
		})
		return res
	}
	sel := []*msgState(*page)
	sort.Slice(sel, func(i, j int) bool { return sel[i].id < sel[j].id })
	if limit >= 0 && len(sel) > limit {
		sel = sel[:limit]
		res.Next = sel[len(sel)-1].id
	}
	states := l.messageStates()
	var scratch queue.Message
	for _, ms := range sel {
		ms.mu.Lock()
		m := ms.view(l.packer, &scratch)
		lm := ListedMessage{ID: ms.id, Sender: m.From, Tenant: m.Tenant, Campaign: m.Campaign, Created: m.Created,
			NextDue: ms.nextDue(m), Attempts: m.Attempts, Size: m.Size, State: stateOf(states, ms)}
		for _, rc := range m.Recipients {
			if rc.State == queue.Pending {
				lm.Recipients = append(lm.Recipients, ListedRecipient{Addr: rc.Addr, Attempts: rc.Attempts, LastReply: rc.LastReply})
			}
		}
		ms.mu.Unlock()
		res.Messages = append(res.Messages, lm)
	}
	return res
}

// nextDue is the message's next scheduled attempt. Call with ms.mu held.
func (ms *msgState) nextDue(m *queue.Message) time.Time {
	if t := ms.due.earliest(); !t.IsZero() {
		return t
	}
	return m.NextDue
}

// MatchIDs returns the ids of every queued message f matches, in id order
// (for the actions on a filter).
func (l *Loop) MatchIDs(ctx context.Context, f ListFilter) []string {
	f.GroupBy, f.Limit, f.After = "", -1, ""
	var ids []string
	l.walk(ctx, f, true, func(ms *msgState, _ []groupHit) { ids = append(ids, ms.id) })
	sort.Strings(ids)
	return ids
}

// groupHit is a group a matching message counts in, with its matching
// pending recipients there.
type groupHit struct {
	key   string
	rcpts int
}

// idHeap keeps the largest id on top, so that a page keeps the smallest.
type idHeap []*msgState

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i].id > h[j].id }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(*msgState)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// messageStates returns the state of every message with an item that is
// not simply scheduled: ready (or in flight), suspended or held. A message
// with items in several states shows the last found: held, suspended,
// ready.
func (l *Loop) messageStates() map[*msgState]string {
	st := map[*msgState]string{}
	l.mu.Lock()
	for _, q := range l.sites {
		for _, f := range []*fifo{&q.high, &q.bulk} {
			for _, it := range f.items[f.head:] {
				st[it.ms] = StateReady
			}
		}
	}
	l.mu.Unlock()
	l.admin.fmu.Lock()
	for it := range l.admin.inFlight {
		st[it.ms] = StateReady
	}
	l.admin.fmu.Unlock()
	l.admin.mu.Lock()
	l.pruneHeldLocked()
	for _, r := range l.admin.suspends {
		for _, it := range r.held {
			st[it.ms] = StateSuspended
		}
	}
	for _, r := range l.admin.holds {
		for _, it := range r.held {
			st[it.ms] = StateHeld
		}
	}
	l.admin.mu.Unlock()
	return st
}

func stateOf(states map[*msgState]string, ms *msgState) string {
	if s, ok := states[ms]; ok {
		return s
	}
	return StateScheduled
}

// walkChunk is how many messages a walk looks at between checks of ctx.
const walkChunk = 4096

// walk calls fn for every queued message f matches (any order), with,
// when f.GroupBy is set, the groups it counts in. With paging set, messages up to f.After are
// skipped.
func (l *Loop) walk(ctx context.Context, f ListFilter, paging bool, fn func(ms *msgState, keys []groupHit)) {
	l.waitLoaded()
	var states map[*msgState]string
	if f.State != "" {
		states = l.messageStates()
	}
	var smu sync.Mutex
	sites := map[string]string{}
	siteOf := func(domain string) string {
		smu.Lock()
		defer smu.Unlock()
		s, ok := sites[domain]
		if !ok {
			s = l.siteOf(ctx, domain).String()
			sites[domain] = s
		}
		return s
	}
	needSite := f.Site != "" || f.GroupBy == "site"
	var born time.Time
	if f.Older > 0 {
		born = l.clock.Now().Add(-f.Older)
	}
	type rcpt struct{ domain, addr string }
	var (
		scratch queue.Message
		rcpts   []rcpt
		keys    []groupHit
	)
	hit := func(key string) {
		for i := range keys {
			if keys[i].key == key {
				keys[i].rcpts++
				return
			}
		}
		keys = append(keys, groupHit{key: key, rcpts: 1})
	}
	msgs := l.snapshotMsgs()
	for i, ms := range msgs {
		if i%walkChunk == 0 && ctx.Err() != nil {
			return
		}
		if paging && f.After != "" && ms.id <= f.After {
			continue
		}
		if (f.Tenant != "" && f.Tenant != ms.env.tenant) || (f.Campaign != "" && f.Campaign != ms.env.campaign) {
			continue
		}
		if f.State != "" && stateOf(states, ms) != f.State {
			continue
		}
		ms.mu.Lock()
		if ms.corrupt {
			ms.mu.Unlock()
			continue
		}
		m := ms.view(l.packer, &scratch)
		if m.Attempts < f.MinAttempts || (!born.IsZero() && m.Created.After(born)) ||
			(f.Sender != "" && !strings.EqualFold(f.Sender, m.From)) {
			ms.mu.Unlock()
			continue
		}
		from := m.From
		rcpts = rcpts[:0]
		for k := range m.Recipients {
			rc := &m.Recipients[k]
			if rc.State != queue.Pending {
				continue
			}
			d := mailaddr.Domain(rc.Addr)
			if f.Domain != "" && f.Domain != d {
				continue
			}
			if f.Recipient != "" && !containsFold(rc.Addr, f.Recipient) {
				continue
			}
			rcpts = append(rcpts, rcpt{d, rc.Addr})
		}
		ms.mu.Unlock()
		if len(rcpts) == 0 {
			continue
		}
		keys = keys[:0]
		matched := false
		for _, r := range rcpts {
			var site string
			if needSite {
				site = siteOf(r.domain)
				if f.Site != "" && !strings.EqualFold(f.Site, site) {
					continue
				}
			}
			matched = true
			switch f.GroupBy {
			case "domain":
				hit(r.domain)
			case "site":
				hit(site)
			case "tenant":
				hit(ms.env.tenant)
			case "campaign":
				hit(ms.env.campaign)
			case "sender":
				hit(strings.ToLower(from))
			}
		}
		if matched {
			fn(ms, keys)
		}
	}
}

// containsFold reports whether s contains sub (lower case) ignoring ASCII
// case, without allocating for the common all-lower address.
func containsFold(s, sub string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return strings.Contains(strings.ToLower(s), sub)
		}
	}
	return strings.Contains(s, sub)
}

// ActionResult counts what an action on messages did.
type ActionResult struct {
	Messages   int // messages acted on
	Recipients int // their pending recipients settled
}

// BounceMessages bounces every pending recipient of the messages ids (of
// tenant when set) as an admin bounce does: AdminBounce records with
// reason, a bounce message to the sender when bounces are sent
// (Options.SendBounce), and the messages leave the spool. It returns the
// ids not queued.
func (l *Loop) BounceMessages(ids []string, tenant, reason string) (ActionResult, []string) {
	return l.settleMessages(ids, tenant, kindAdminBounce, adminReply(reason))
}

// adminDeleteText is the text of the reply recorded for a recipient an
// operator deleted.
const adminDeleteText = "Administrator deleted"

// DeleteMessages removes the messages ids (of tenant when set) from the
// queue and the spool without a bounce: an AdminDelete record per pending
// recipient. It returns the ids not queued.
func (l *Loop) DeleteMessages(ids []string, tenant, reason string) (ActionResult, []string) {
	rep := adminReply(reason)
	rep.Lines = []string{strings.Replace(rep.Lines[0], AdminBounceReply.Lines[0], adminDeleteText, 1)}
	return l.settleMessages(ids, tenant, kindAdminDelete, rep)
}

func (l *Loop) settleMessages(ids []string, tenant string, kind recordKind, rep smtpwire.Reply) (ActionResult, []string) {
	l.waitLoaded()
	var res ActionResult
	var missing []string
	for _, id := range ids {
		l.mu.Lock()
		ms := l.msgs.get(id)
		l.mu.Unlock()
		if ms == nil || tenant != "" && ms.env.tenant != tenant {
			missing = append(missing, id)
			continue
		}
		if n := l.settleMessage(ms, kind, rep); n > 0 {
			res.Messages++
			res.Recipients += n
		}
	}
	if res.Messages > 0 {
		l.admin.mu.Lock()
		l.pruneHeldLocked() // what was settled is held no more
		l.admin.mu.Unlock()
	}
	return res, missing
}

// settleMessage gives every pending recipient of ms a final verdict of
// kind; its work items finish without a transaction when they come due.
func (l *Loop) settleMessage(ms *msgState, kind recordKind, rep smtpwire.Reply) int {
	now := l.clock.Now()
	ms.mu.Lock()
	if ms.corrupt {
		ms.mu.Unlock()
		return 0
	}
	m := ms.msg(l.packer)
	var vs []verdict
	for i := range m.Recipients {
		if m.Recipients[i].State == queue.Pending {
			vs = append(vs, verdict{kind: kind, rcpt: i, reply: rep,
				dest: outbound.Path{Domain: mailaddr.Domain(m.Recipients[i].Addr), Site: l.relay}})
		}
	}
	if len(vs) == 0 {
		ms.mu.Unlock()
		return 0
	}
	var dsn *dsnInfo
	if kind == kindAdminBounce && l.sendsDSN(m) {
		dsn = l.dsnFor(m, vs, &outbound.Outcome{}, now)
	}
	settled := l.settle(ms, m, vs, nil, now)
	ms.mu.Unlock()
	l.publish(&settled)
	l.sendDSN(dsn)
	return len(vs)
}
