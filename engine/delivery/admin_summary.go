package delivery

import (
	"context"
	"sort"
	"time"

	"gannet/mailaddr"
	"gannet/queue"
)

// QueueStatus is one scheduled queue ("campaign:tenant@domain") in the
// queue summary. Counts of work items are per message and domain: one item
// is the pending recipients of one message at this domain.
type QueueStatus struct {
	Name                     string // QueueName(Campaign, Tenant, Domain)
	Domain, Tenant, Campaign string
	Site                     string // the MX site of items ready or in flight ("" when none is)
	Messages                 int    // messages with pending recipients here
	Recipients               int    // their pending recipients here
	Scheduled                int    // items waiting for their due time or DNS
	Ready                    int    // items in a site's ready queue
	InFlight                 int    // items a site worker has taken
	Held                     int    // items held by an admin suspension
	Suspended                bool   // an admin suspension matches the queue
	Bouncing                 bool   // an admin bounce matches the queue
}

// Summary is the state of the whole queue for the admin API.
type Summary struct {
	Queues []QueueStatus // by name
	Sites  []SiteStatus  // Loop.Sites, Suspended also by admin suspensions of the site
	// Totals over Queues.
	Messages, Recipients, Scheduled, Ready, InFlight, Held int
}

type queueKey struct{ campaign, tenant, domain string }

// Summary counts the queue by scheduled queue and by site. With tenant
// set, only that tenant's mail is counted and Sites (shared by every
// tenant) is left out. It walks every message held (metadata only, no
// spool access): meant for an operator's request, not for a scrape every
// second on a queue of millions.
func (l *Loop) Summary(tenant string) Summary {
	type counts struct {
		QueueStatus
		items int
	}
	byKey := map[queueKey]*counts{}
	get := func(k queueKey) *counts {
		c := byKey[k]
		if c == nil {
			c = &counts{QueueStatus: QueueStatus{Name: QueueName(k.campaign, k.tenant, k.domain),
				Domain: k.domain, Tenant: k.tenant, Campaign: k.campaign}}
			byKey[k] = c
		}
		return c
	}
	keyOf := func(it *workItem) queueKey {
		return queueKey{it.ms.env.campaign, it.ms.env.tenant, it.domain}
	}
	mine := func(it *workItem) bool { return tenant == "" || it.ms.env.tenant == tenant }
	l.waitLoaded()

	// Ready items, from the ready queues.
	l.mu.Lock()
	msgs := make([]*msgState, 0, l.msgs.len())
	l.msgs.each(func(ms *msgState) {
		if tenant == "" || ms.env.tenant == tenant {
			msgs = append(msgs, ms)
		}
	})
	for _, q := range l.sites {
		for _, f := range []*fifo{&q.high, &q.bulk} {
			for _, it := range f.items[f.head:] {
				if !mine(it) {
					continue
				}
				c := get(keyOf(it))
				c.Ready++
				c.Site = q.path.Site.String()
			}
		}
	}
	l.mu.Unlock()

	l.admin.fmu.Lock()
	for it := range l.admin.inFlight {
		if !mine(it) {
			continue
		}
		c := get(keyOf(it))
		c.InFlight++
		if s := it.site(); !s.IsZero() {
			c.Site = s.String()
		}
	}
	l.admin.fmu.Unlock()

	now := l.clock.Now()
	l.admin.mu.Lock()
	l.pruneHeldLocked()
	for _, r := range l.admin.holding() {
		for _, it := range r.held {
			if mine(it) {
				get(keyOf(it)).Held++
			}
		}
	}
	l.admin.mu.Unlock()

	// Pending recipients and items, from the messages.
	seen := map[string]bool{}
	var scratch queue.Message
	for _, ms := range msgs {
		ms.mu.Lock()
		m := ms.view(l.packer, &scratch)
		clear(seen)
		for i := range m.Recipients {
			if m.Recipients[i].State != queue.Pending {
				continue
			}
			d := mailaddr.Domain(m.Recipients[i].Addr)
			c := get(queueKey{m.Campaign, m.Tenant, d})
			c.Recipients++
			if !seen[d] {
				seen[d] = true
				c.Messages++
				c.items++
			}
		}
		ms.mu.Unlock()
	}

	var s Summary
	l.admin.mu.Lock()
	for _, c := range byKey {
		c.Scheduled = max(0, c.items-c.Ready-c.InFlight-c.Held)
		if c.Site == "" {
			c.Site = l.relay.String() // "" without relay_to
		}
		if c.Messages == 0 && c.Ready == 0 && c.InFlight == 0 && c.Held == 0 {
			continue // items left over from mail bounced meanwhile
		}
		b, sp := l.admin.matchLocked(c.Domain, c.Tenant, c.Campaign, c.Site, now)
		c.Bouncing = b != nil
		if sp != nil {
			c.Suspended = true
		} else {
			// A suspension of the site, or of more than this queue.
			for _, r := range l.admin.suspends {
				if r.Selector.Site != "" && r.Selector.match(c.Domain, c.Tenant, c.Campaign, r.Selector.Site) {
					c.Suspended = true
				}
			}
		}
		s.Queues = append(s.Queues, c.QueueStatus)
		s.Messages += c.Messages
		s.Recipients += c.Recipients
		s.Scheduled += c.Scheduled
		s.Ready += c.Ready
		s.InFlight += c.InFlight
		s.Held += c.Held
	}
	l.admin.mu.Unlock()
	s.Messages = len(msgs)
	sort.Slice(s.Queues, func(i, j int) bool { return s.Queues[i].Name < s.Queues[j].Name })

	if tenant != "" {
		return s
	}
	s.Sites = l.Sites()
	l.admin.mu.Lock()
	for i := range s.Sites {
		for _, r := range l.admin.suspends {
			sel := r.Selector
			if sel.Site != "" && sel.Domain == "" && sel.Tenant == "" && sel.Campaign == "" &&
				sel.match("", "", "", s.Sites[i].Site) {
				s.Sites[i].Suspended = true
			}
		}
	}
	l.admin.mu.Unlock()
	return s
}

// MessageInfo is what the loop knows of one queued message.
type MessageInfo struct {
	// Message is a copy of the loop's metadata: recipient states, attempts
	// and last replies, the next due time, and the spool location (for
	// Spool.Body).
	Message queue.Message
	// Due is the next attempt of each destination domain with a retry
	// scheduled.
	Due map[string]time.Time
	// Sites is the MX site of each destination domain with pending
	// recipients ("" when it does not resolve now).
	Sites map[string]string
	// Held lists the domains whose mail an admin suspension holds.
	Held []string
	// InFlight lists the domains in a transaction (or taken by a worker).
	InFlight []string
}

// Inspect returns what the loop knows of message id; false when it does
// not hold it (delivered, bounced, unknown). The sites come from the
// Router's cache, bounded by ctx.
func (l *Loop) Inspect(ctx context.Context, id string) (MessageInfo, bool) {
	l.waitLoaded()
	l.mu.Lock()
	ms := l.msgs.get(id)
	l.mu.Unlock()
	if ms == nil {
		return MessageInfo{}, false
	}
	var info MessageInfo
	var scratch queue.Message
	ms.mu.Lock()
	m := ms.view(l.packer, &scratch)
	info.Message = *m
	info.Message.Recipients = append([]queue.Recipient(nil), m.Recipients...)
	if len(ms.due) > 0 {
		info.Due = make(map[string]time.Time, len(ms.due))
		for _, e := range ms.due {
			info.Due[e.domain] = e.at
		}
	}
	ms.mu.Unlock()

	info.Sites = map[string]string{}
	for _, r := range info.Message.Recipients {
		if r.State != queue.Pending {
			continue
		}
		d := mailaddr.Domain(r.Addr)
		if _, ok := info.Sites[d]; !ok {
			info.Sites[d] = l.siteOf(ctx, d).String()
		}
	}
	l.admin.mu.Lock()
	l.pruneHeldLocked()
	for _, r := range l.admin.holding() {
		for _, it := range r.held {
			if it.ms == ms {
				info.Held = append(info.Held, it.domain)
			}
		}
	}
	l.admin.mu.Unlock()
	l.admin.fmu.Lock()
	for it := range l.admin.inFlight {
		if it.ms == ms {
			info.InFlight = append(info.InFlight, it.domain)
		}
	}
	l.admin.fmu.Unlock()
	sort.Strings(info.Held)
	sort.Strings(info.InFlight)
	return info, true
}
