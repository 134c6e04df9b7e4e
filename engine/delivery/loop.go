package delivery

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// ErrStopped is returned by Stop when called twice, and means Enqueue was
// ignored.
var ErrStopped = errors.New("delivery: stopped")

// msgState is the in-memory side of one spooled message: its metadata,
// guarded by mu because the work items of its different domains are
// delivered concurrently, and its outstanding work items.
type msgState struct {
	mu    sync.Mutex
	m     *queue.Message
	items int                  // work items scheduled, ready or in flight
	due   map[string]time.Time // next attempt per domain with a retry scheduled
}

// workItem is the unit of scheduling and delivery: the pending recipients
// of one message at one destination domain, delivered in one transaction.
type workItem struct {
	ms     *msgState
	domain string
	rcpts  []int // indexes into ms.m.Recipients
	route  *resolver.Route
}

// Loop moves messages from the spool to their destinations: scheduled
// queue → DNS → site ready queue → site workers → outbound → outcome.
type Loop struct {
	opts    Options
	clock   queue.Clock
	metrics Metrics
	log     *slog.Logger
	sched   *queue.Scheduler[*workItem]

	runCtx     context.Context // ends at Stop: no new work
	runCancel  context.CancelFunc
	txCtx      context.Context // ends when Stop's deadline passes: abort transactions
	txCancel   context.CancelFunc
	resolveSem chan struct{}

	mu       sync.Mutex
	msgs     map[string]*msgState
	sites    map[string]*readyQueue
	stopping bool
	started  bool

	ready   atomic.Int64 // items due: resolving or waiting in a ready queue
	workers sync.WaitGroup
	runDone chan struct{}
}

// New returns a Loop; Start runs it.
func New(opts Options) *Loop {
	if opts.Clock == nil {
		opts.Clock = queue.SystemClock()
	}
	if opts.Limits == nil {
		opts.Limits = func(string, string) outbound.Limits { return outbound.Limits{Connections: 10} }
	}
	if opts.ResolveConcurrency <= 0 {
		opts.ResolveConcurrency = 16
	}
	l := &Loop{
		opts:       opts,
		clock:      opts.Clock,
		metrics:    opts.Metrics,
		log:        opts.Logger,
		sched:      queue.NewScheduler[*workItem](opts.Clock),
		resolveSem: make(chan struct{}, opts.ResolveConcurrency),
		msgs:       make(map[string]*msgState),
		sites:      make(map[string]*readyQueue),
		runDone:    make(chan struct{}),
	}
	if l.metrics == nil {
		l.metrics = nopMetrics{}
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.runCtx, l.runCancel = context.WithCancel(context.Background())
	l.txCtx, l.txCancel = context.WithCancel(context.Background())
	return l
}

// Start runs the scheduler. Messages may be enqueued before Start; they
// wait until it runs.
func (l *Loop) Start() {
	l.mu.Lock()
	if l.started || l.stopping {
		l.mu.Unlock()
		return
	}
	l.started = true
	l.mu.Unlock()
	go func() {
		defer close(l.runDone)
		l.sched.Run(l.runCtx, l.due)
	}()
}

// Wake makes the scheduler look at the clock again (tests that move a
// queue.FakeClock call it; the real clock needs no help).
func (l *Loop) Wake() { l.sched.Schedule(nil, time.Time{}) }

// QueueDepth returns the number of work items waiting for their due time
// (scheduled) and of those due but not yet handed to a connection (ready):
// gannet_queue_depth{queue="scheduled|ready"}.
func (l *Loop) QueueDepth() (scheduled, ready int) {
	return l.sched.Len(), int(l.ready.Load())
}

// Messages returns the number of messages the loop holds.
func (l *Loop) Messages() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

// Enqueue takes a spooled message: its pending recipients are grouped by
// destination domain (lower-cased), one work item per domain, due at
// m.NextDue (now when zero). It is also how the engine hands over every
// message from Spool.Scan at startup. A message already held is ignored.
// The Loop owns m from now on: others must not change it.
func (l *Loop) Enqueue(m *queue.Message) error {
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return ErrStopped
	}
	if _, dup := l.msgs[m.ID]; dup {
		l.mu.Unlock()
		return nil
	}
	ms := &msgState{m: m}
	l.msgs[m.ID] = ms
	l.mu.Unlock()

	ms.mu.Lock()
	groups := groupByDomain(m)
	ms.items = len(groups)
	ms.mu.Unlock()
	if len(groups) == 0 {
		// Nothing pending: a leftover of an interrupted removal.
		l.forget(m.ID)
		if err := l.opts.Store.Remove(m.ID); err != nil {
			l.log.Error("delivery: removing finished message", "id", m.ID, "err", err)
		}
		return nil
	}
	for _, g := range groups {
		g.ms = ms
		l.sched.Schedule(g, m.NextDue)
	}
	return nil
}

// groupByDomain makes the work items of m: one per destination domain of
// its pending recipients, in order of first appearance.
func groupByDomain(m *queue.Message) []*workItem {
	var items []*workItem
	for i := range m.Recipients {
		if m.Recipients[i].State != queue.Pending {
			continue
		}
		d := domainOf(m.Recipients[i].Addr)
		var it *workItem
		for _, x := range items {
			if x.domain == d {
				it = x
				break
			}
		}
		if it == nil {
			it = &workItem{domain: d}
			items = append(items, it)
		}
		it.rcpts = append(it.rcpts, i)
	}
	return items
}

// domainOf returns the lower-cased domain of an address ("" without one).
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

func (l *Loop) forget(id string) {
	l.mu.Lock()
	delete(l.msgs, id)
	l.mu.Unlock()
}

// due runs on the scheduler goroutine for every item whose time has come:
// it starts the DNS lookup on a bounded set of goroutines.
func (l *Loop) due(it *workItem) {
	if it == nil { // Wake
		return
	}
	select {
	case l.resolveSem <- struct{}{}:
	case <-l.runCtx.Done():
		return // stays in the spool; the next start picks it up
	}
	l.ready.Add(1)
	go func() {
		defer func() { <-l.resolveSem }()
		l.route(it)
	}()
}

// route resolves the item's domain and queues it at its site.
func (l *Loop) route(it *workItem) {
	var route *resolver.Route
	switch {
	case it.domain == "":
		l.ready.Add(-1)
		// RFC 5321 §4.1.2: a forward-path needs a domain.
		l.applyAll(it, outbound.Bounced, smtpwire.Reply{Code: 550, Enhanced: "5.1.3", Lines: []string{"recipient address has no domain"}})
		return
	case l.opts.RelayTo != "":
		route = &resolver.Route{Domain: it.domain, Site: l.opts.RelayTo}
	case l.opts.Router == nil:
		l.ready.Add(-1)
		l.applyAll(it, outbound.Transient, smtpwire.Reply{Code: 451, Enhanced: "4.4.3", Lines: []string{"no resolver configured"}})
		return
	default:
		var err error
		route, err = l.opts.Router.Resolve(l.runCtx, it.domain)
		if err != nil {
			l.ready.Add(-1)
			if l.runCtx.Err() != nil {
				return // stopping: not an attempt; the spool keeps the message
			}
			st, rep := resolveFailure(err)
			l.applyAll(it, st, rep)
			return
		}
	}
	it.route = route
	site := route.Site
	if site == "" {
		site = it.domain
	}
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		l.ready.Add(-1)
		return
	}
	q := l.sites[site]
	if q == nil {
		q = &readyQueue{site: site}
		l.sites[site] = q
	}
	q.domain = it.domain
	q.push(it)
	spawn := q.workers < max(1, l.opts.Limits(site, it.domain).Connections)
	if spawn {
		q.workers++
		l.workers.Add(1)
	}
	l.mu.Unlock()
	if spawn {
		go l.work(q)
	}
}

// resolveFailure turns a resolver error into a recipient status and reply:
// a permanent *resolver.Error bounces with its code (null MX 556 5.1.10,
// NXDOMAIN 550 5.1.2); anything else is a transient 451 4.4.3.
func resolveFailure(err error) (outbound.Status, smtpwire.Reply) {
	var re *resolver.Error
	if errors.As(err, &re) {
		rep := smtpwire.Reply{Code: re.Code, Enhanced: re.Enhanced, Lines: []string{re.Message + ": " + re.Domain}}
		if re.Permanent() {
			return outbound.Bounced, rep
		}
		return outbound.Transient, rep
	}
	return outbound.Transient, smtpwire.Reply{Code: 451, Enhanced: "4.4.3", Lines: []string{"DNS lookup failed: " + err.Error()}}
}

// work is one of a site's workers: it delivers the site's ready items one
// after another and ends when the queue is empty or the loop stops. A site
// has at most Limits.Connections workers, so never more transactions in
// flight than connections allowed.
func (l *Loop) work(q *readyQueue) {
	defer l.workers.Done()
	for {
		l.mu.Lock()
		var it *workItem
		if !l.stopping && q.workers <= max(1, l.opts.Limits(q.site, q.domain).Connections) {
			it = q.pop()
		}
		if it == nil {
			q.workers--
			if q.workers == 0 && q.len() == 0 && l.sites[q.site] == q {
				delete(l.sites, q.site)
			}
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		l.ready.Add(-1)
		l.deliver(it)
	}
}

// deliver runs the transaction of one item and applies its outcome.
func (l *Loop) deliver(it *workItem) {
	ms := it.ms
	ms.mu.Lock()
	m := ms.m
	env := &outbound.Envelope{From: m.From}
	idx := make([]int, 0, len(it.rcpts))
	for _, i := range it.rcpts {
		if m.Recipients[i].State == queue.Pending {
			env.Rcpts = append(env.Rcpts, m.Recipients[i].Addr)
			idx = append(idx, i)
		}
	}
	snapshot := *m
	snapshot.Recipients = nil
	ms.mu.Unlock()
	if len(idx) == 0 {
		l.apply(it, nil, outbound.Outcome{})
		return
	}
	body, err := l.opts.Store.Body(&snapshot)
	var out outbound.Outcome
	if err != nil {
		l.log.Error("delivery: reading message body", "id", m.ID, "err", err)
		out.Results = make([]outbound.Result, len(idx))
		for k := range idx {
			out.Results[k] = outbound.Result{Rcpt: env.Rcpts[k], Status: outbound.Transient,
				Reply: smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"cannot read the message from the spool"}}}
		}
	} else {
		env.Body = body
		out = l.opts.Transport.Deliver(l.txCtx, it.route, env)
		env.Body = nil
	}
	l.apply(it, idx, out)
}

// Stop stops taking new work (Enqueue fails, nothing more becomes due or
// is handed to a worker), lets the transactions in flight finish, then
// closes the Transport. When ctx ends first, the transactions are aborted
// (their recipients count as deferred and stay in the spool) and Stop
// returns ctx.Err() after they have been recorded.
func (l *Loop) Stop(ctx context.Context) error {
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return ErrStopped
	}
	l.stopping = true
	started := l.started
	l.mu.Unlock()
	l.runCancel()
	if started {
		<-l.runDone
	}
	// Wait for the DNS lookups to finish (they see runCtx cancelled).
	for i := 0; i < cap(l.resolveSem); i++ {
		l.resolveSem <- struct{}{}
	}
	done := make(chan struct{})
	go func() {
		l.workers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		l.txCancel()
		<-done
	}
	l.txCancel()
	if cerr := l.opts.Transport.Close(); err == nil {
		err = cerr
	}
	return err
}
