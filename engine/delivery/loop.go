package delivery

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gannet/engine/outbound"
	"gannet/mailaddr"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// ErrStopped is returned by Stop when called twice, and means Enqueue was
// ignored.
var ErrStopped = errors.New("delivery: stopped")

// workItem is the unit of scheduling and delivery: the pending recipients
// of one message at one destination domain, delivered in one transaction.
type workItem struct {
	ms     *msgState
	domain string
	rcpts  []int // indexes into ms.m.Recipients
	route  *resolver.Route
	high   bool            // high priority (Message.Priority > 0)
	source outbound.Source // egress source, chosen when first routed
	qkey   string          // its ready queue's key (Path.Key); "" until routed
	// slot is the time a tenant-rate slot was booked for this item, which
	// then waited for it in the scheduled queue (zero: none booked).
	slot time.Time
	// tenantToken: the item holds a token of its tenant's shared rate
	// (sharedtenant.go), not spent yet.
	tenantToken bool
	// retryAt is the retry time the item was scheduled for (zero: not a
	// retry). When the message's next attempt at the domain (msgState.due)
	// is no longer that time, an operator's retry replaced the item
	// (retry.go) and it is stale when it comes due.
	retryAt time.Time
	// xfer is the xfer rule the item was routed by (xfer.go); nil: none.
	xfer *adminRule
}

// site returns the site of the item's route; zero before routing.
func (it *workItem) site() resolver.SiteKey {
	if it.route == nil {
		return resolver.SiteKey{}
	}
	return routeSite(it.route, it.domain)
}

// path returns the item's path: its egress source, its site (zero before
// routing) and its domain.
func (it *workItem) path() outbound.Path {
	return outbound.Path{Source: it.source.Name, Site: it.site(), Domain: it.domain}
}

// routeSite returns the site of a route to domain: the route's, or, when
// the Router named none, the domain's own (an implicit MX).
func routeSite(rt *resolver.Route, domain string) resolver.SiteKey {
	if rt.Site.IsZero() {
		return resolver.MXSite([]string{domain})
	}
	return rt.Site
}

// lane returns 0 for high-priority items and 1 for bulk ones: each lane
// has its own scheduler and DNS lookups, so that bulk mail due by the
// thousand never delays a transactional message on its way to the ready
// queue.
func (it *workItem) lane() int {
	if it.high {
		return 0
	}
	return 1
}

// Loop moves messages from the spool to their destinations: scheduled
// queue → DNS → site ready queue → site workers → outbound → outcome.
type Loop struct {
	opts    Options
	clock   queue.Clock
	metrics Metrics
	log     *slog.Logger
	sched   [2]*queue.Scheduler[schedRef] // by lane: high, bulk
	tenants *tenantLimits
	packer  *queue.Packer // packed metadata of waiting messages (message.go)
	envs    envTable
	retry   atomic.Pointer[queue.RetryPolicy] // Options.Retry, then SetRetry
	relay   resolver.SiteKey                  // the relay_to smarthost (Options.RelayTo); zero: MX delivery
	located locatedRemover                    // Options.Store, when it is one

	scriptRates scriptRates // tenant rates set by policy scripts (scriptrate.go)

	runCtx     context.Context // ends at Stop: no new work
	runCancel  context.CancelFunc
	txCtx      context.Context // ends when Stop's deadline passes: abort transactions
	txCancel   context.CancelFunc
	resolveSem [2]chan struct{} // by lane

	mu        sync.Mutex
	msgs      msgTable
	sites     map[string]*readyQueue // by Path.Key
	lastSweep time.Time
	admin     adminState // operator bounces and suspensions (admin.go)
	stopping  bool
	started   bool

	ready atomic.Int64 // items due: resolving or waiting in a ready queue
	// unsplit counts the work items that whole messages in the schedulers
	// will make beyond one each, so that QueueDepth counts items.
	unsplit atomic.Int64
	// loadMu is held by Load; the admin views wait for it (load.go).
	loadMu   sync.RWMutex
	loadLeft atomic.Int64 // messages Load has yet to hand over
	workers  sync.WaitGroup
	runDone  [2]chan struct{}
	// idle hands a ready queue to a worker goroutine waiting for one
	// (worker); idleWorkers counts those waiting.
	idle        chan *readyQueue
	idleWorkers atomic.Int32
}

// A worker goroutine that has run its queue dry waits up to workerLinger
// for another one, unless maxIdleWorkers wait already.
const (
	workerLinger   = 2 * time.Second
	maxIdleWorkers = 128
)

// New returns a Loop; Start runs it.
func New(opts Options) *Loop {
	if opts.Clock == nil {
		opts.Clock = queue.SystemClock()
	}
	if opts.Limits == nil {
		opts.Limits = func(outbound.Path) outbound.Limits { return outbound.Limits{Connections: 10} }
	}
	if opts.ResolveConcurrency <= 0 {
		opts.ResolveConcurrency = 16
	}
	l := &Loop{
		opts:    opts,
		clock:   opts.Clock,
		metrics: opts.Metrics,
		log:     opts.Logger,
		msgs:    newMsgTable(),
		sites:   make(map[string]*readyQueue),
		tenants: newTenantLimits(opts.Clock.Now),
		packer:  queue.NewPacker(0),
		idle:    make(chan *readyQueue),
	}
	l.retry.Store(&opts.Retry)
	l.located, _ = opts.Store.(locatedRemover)
	if opts.RelayTo != "" {
		l.relay = resolver.RelaySite(opts.RelayTo)
	}
	for i := range l.sched {
		l.sched[i] = queue.NewScheduler[schedRef](opts.Clock)
		l.resolveSem[i] = make(chan struct{}, opts.ResolveConcurrency)
		l.runDone[i] = make(chan struct{})
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
	for i := range l.sched {
		go func() {
			defer close(l.runDone[i])
			l.sched[i].Run(l.runCtx, l.due)
		}()
	}
}

// Wake makes the schedulers look at the clock again (tests that move a
// queuetest.FakeClock call it; the real clock needs no help).
func (l *Loop) Wake() {
	for _, s := range l.sched {
		s.Schedule(schedRef{}, time.Time{})
	}
}

// QueueDepth returns the number of work items waiting for their due time
// (scheduled) and of those due but not yet handed to a connection (ready):
// gannet_queue_depth{queue="scheduled|ready"}.
func (l *Loop) QueueDepth() (scheduled, ready int) {
	return l.sched[0].Len() + l.sched[1].Len() + int(l.unsplit.Load()), int(l.ready.Load())
}

// schedule puts an item in its lane's scheduled queue.
func (l *Loop) schedule(it *workItem, due time.Time) {
	l.sched[it.lane()].Schedule(schedRef{it: it}, due)
}

// lane returns the scheduler lane of a message (see workItem.lane).
func (ms *msgState) lane() int {
	if ms.high {
		return 0
	}
	return 1
}

// Messages returns the number of messages the loop holds, counting those
// a Load in progress has yet to hand over (so that max_queue_depth holds
// while the queue loads).
func (l *Loop) Messages() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msgs.len() + int(l.loadLeft.Load())
}

// SetRetry replaces the retry schedule (a config reload): attempts that
// fail from now on are rescheduled and expired by p; retries already
// scheduled keep their time.
func (l *Loop) SetRetry(p queue.RetryPolicy) { l.retry.Store(&p) }

// Retry returns the retry schedule in force.
func (l *Loop) Retry() queue.RetryPolicy { return *l.retry.Load() }

// retryFor is the retry schedule of a message's mail to domain: the
// Options.RetryFor answer over the loop's schedule.
func (l *Loop) retryFor(env *msgEnv, domain string) queue.RetryPolicy {
	p := *l.retry.Load()
	if f := l.opts.RetryFor; f != nil {
		if q, ok := f(env.tenant, env.campaign, domain); ok {
			p.Initial = cmp.Or(q.Initial, p.Initial)
			p.Max = cmp.Or(q.Max, p.Max)
			p.MaxAge = cmp.Or(q.MaxAge, p.MaxAge)
		}
	}
	return p
}

// Enqueue takes a spooled message: its pending recipients are grouped by
// destination domain (lower-cased), one work item per domain, due at
// m.NextDue (now when zero). (At startup the engine hands over the spool
// with Load instead.) A message already held is ignored.
// The Loop owns m from now on: others must not change it.
func (l *Loop) Enqueue(m *queue.Message) error {
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return ErrStopped
	}
	if l.msgs.get(m.ID) != nil {
		l.mu.Unlock()
		return nil
	}
	ms := l.newMsgState(m)
	l.msgs.add(ms)
	started := l.started
	l.mu.Unlock()

	ms.mu.Lock()
	groups := groupByDomain(m)
	ms.items = len(groups)
	due := m.NextDue // read now: once the first item runs, apply changes it
	ms.mu.Unlock()
	if len(groups) == 0 {
		// Nothing pending: a leftover of an interrupted removal.
		l.forget(ms)
		if err := l.opts.Store.Remove(m.ID); err != nil {
			l.log.Error("delivery: removing finished message", "id", m.ID, "err", err)
		}
		return nil
	}
	for _, g := range groups {
		g.ms = ms
		g.high = ms.high
		// A new message is due now: an item that needs no wait goes to
		// its ready queue at once, without waking the scheduler.
		if due.IsZero() && started && l.admin.rules.Load() == 0 && l.routeSmarthost(g) {
			continue
		}
		l.schedule(g, due)
	}
	return nil
}

// dueMessage runs on the scheduler goroutine when a whole message comes
// due (one loaded at startup, or waiting for the retry of its last
// domain): it is unpacked and split into its work items, one per
// destination domain of its pending recipients, which go on as items do.
func (l *Loop) dueMessage(ms *msgState) {
	ms.mu.Lock()
	if !ms.whole || ms.m == nil && l.packedDue(ms).After(l.clock.Now()) {
		// Stale: an operator's retry split the message sooner (retry.go).
		ms.mu.Unlock()
		return
	}
	ms.whole = false
	m := ms.msg(l.packer)
	groups := groupByDomain(m)
	l.unsplit.Add(-int64(max(ms.items-1, 0)))
	ms.items = len(groups)
	ms.mu.Unlock()
	if len(groups) == 0 {
		// An admin bounce took every pending recipient meanwhile (and
		// removed the message from the spool).
		l.forget(ms)
		return
	}
	for _, it := range groups {
		it.ms = ms
		it.high = ms.high
		l.dueItem(it)
	}
}

// groupByDomain makes the work items of m: one per destination domain of
// its pending recipients, in order of first appearance.
func groupByDomain(m *queue.Message) []*workItem {
	var items []*workItem
	for i := range m.Recipients {
		if m.Recipients[i].State != queue.Pending {
			continue
		}
		d := mailaddr.Domain(m.Recipients[i].Addr)
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

// forget drops a finished message from the loop.
func (l *Loop) forget(ms *msgState) {
	l.mu.Lock()
	l.msgs.remove(ms)
	l.mu.Unlock()
	if l.admin.rules.Load() > 0 { // xferBack has entries only while xfer rules are in force
		l.admin.mu.Lock()
		delete(l.admin.xferBack, ms.id)
		l.admin.mu.Unlock()
	}
}

// due runs on the scheduler goroutine for everything whose time has come.
func (l *Loop) due(r schedRef) {
	switch {
	case r.ms != nil:
		l.dueMessage(r.ms)
	case r.it != nil:
		l.dueItem(r.it)
	}
}

// dueItem handles a work item whose time has come: an item for a
// smarthost is routed at once, on the scheduler goroutine (nothing to look
// up, and no goroutine per message; a new message's items do not even come
// here, see Enqueue); for any other the DNS lookup starts on a bounded set
// of goroutines.
func (l *Loop) dueItem(it *workItem) {
	if !it.retryAt.IsZero() && l.staleRetry(it) {
		return // replaced by an operator's retry (retry.go)
	}
	if l.adminDue(it) { // bounced or held by an operator (admin.go)
		return
	}
	if it.route != nil && !l.xferStale(it) {
		// Back from a wait (tenant rate, suspended site): already routed
		// (unless an xfer rule changed its way).
		l.ready.Add(1)
		l.toReady(it)
		return
	}
	it.route, it.qkey = nil, ""
	if l.routeSmarthost(it) {
		return
	}
	sem := l.resolveSem[it.lane()]
	select {
	case sem <- struct{}{}:
	case <-l.runCtx.Done():
		return // stays in the spool; the next start picks it up
	}
	l.ready.Add(1)
	go func() {
		defer func() { <-sem }()
		l.route(it, resolver.SiteKey{}) // MX hosts (or no domain: bounced)
	}()
}

// routeSmarthost routes an item for a smarthost on the calling goroutine
// (there is nothing to look up) and reports whether it did.
func (l *Loop) routeSmarthost(it *workItem) bool {
	if it.domain == "" {
		return false
	}
	relay := l.xferRoute(it, l.relayOf(it))
	if relay.IsZero() {
		return false
	}
	l.ready.Add(1)
	l.route(it, relay)
	return true
}

// relayOf returns the smarthost the item goes to (relay_to, or a
// [[tenant]] or [relay."DOMAIN"] relay_to); zero: its MX hosts.
func (l *Loop) relayOf(it *workItem) resolver.SiteKey {
	if f := l.opts.RelayFor; f != nil && it.domain != "" {
		if r := f(it.ms.env.tenant, it.domain); r != "" {
			return resolver.RelaySite(r)
		}
	}
	return l.relay
}

// route resolves the item's domain and queues it at its site; relay is
// its smarthost (relayOf), zero for its MX hosts.
func (l *Loop) route(it *workItem, relay resolver.SiteKey) {
	var route *resolver.Route
	switch {
	case it.domain == "":
		l.ready.Add(-1)
		// RFC 5321 §4.1.2: a forward-path needs a domain.
		l.applyAll(it, outbound.Bounced, smtpwire.Reply{Code: 550, Enhanced: "5.1.3", Lines: []string{"recipient address has no domain"}})
		return
	case !relay.IsZero():
		route = &resolver.Route{Domain: it.domain, Site: relay}
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
		if site := l.xferRoute(it, routeSite(route, it.domain)); it.xfer != nil {
			route = &resolver.Route{Domain: it.domain, Site: site}
		}
	}
	it.route = route
	l.toReady(it)
}

// toReady puts a routed item in the ready queue of its path (egress
// source, site), choosing the source the first time, and starts a worker
// for the path when it has fewer than its connection limit.
func (l *Loop) toReady(it *workItem) {
	if it.qkey == "" {
		if l.opts.Egress != nil {
			it.source = l.opts.Egress(it.ms.env.tenant, it.ms.env.campaign, it.domain)
		}
		it.qkey = it.path().Key()
	}
	p := it.path()
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		l.ready.Add(-1)
		return
	}
	q := l.sites[it.qkey]
	if q == nil {
		l.sweepSitesLocked()
		q = &readyQueue{}
		l.sites[it.qkey] = q
	}
	q.path = p
	q.push(it)
	spawn := q.workers < l.connLimit(q)
	if spawn {
		q.workers++
		l.workers.Add(1)
	}
	l.mu.Unlock()
	if spawn {
		l.startWorker(q)
	}
}

// startWorker runs work(q) on a worker goroutine waiting for a queue, or
// on a new one.
func (l *Loop) startWorker(q *readyQueue) {
	select {
	case l.idle <- q:
	default:
		go l.worker(q)
	}
}

// worker runs work on one ready queue after another: a goroutine outlives
// the queue it was started for by up to workerLinger, so that a site whose
// queue runs dry and fills again many times a second reuses it. A new
// goroutine would grow its stack again on the deep delivery path (the
// transaction, the spool's index), a few percent of a busy relay's CPU.
func (l *Loop) worker(q *readyQueue) {
	var linger *time.Timer
	for {
		l.work(q)
		if l.idleWorkers.Add(1) > maxIdleWorkers {
			l.idleWorkers.Add(-1)
			return
		}
		if linger == nil {
			linger = time.NewTimer(workerLinger)
		} else {
			linger.Reset(workerLinger)
		}
		select {
		case q = <-l.idle:
			l.idleWorkers.Add(-1)
		case <-linger.C:
			l.idleWorkers.Add(-1)
			return
		case <-l.runCtx.Done():
			l.idleWorkers.Add(-1)
			return
		}
	}
}

// limits returns the effective limits of a path.
func (l *Loop) limits(p outbound.Path) outbound.Limits {
	if l.opts.Shaper != nil {
		return l.opts.Shaper.Limits(p)
	}
	return l.opts.Limits(p)
}

// connLimit is the number of workers a path may have; called with l.mu
// held (the Shaper never calls back into the loop).
func (l *Loop) connLimit(q *readyQueue) int {
	return max(1, l.limits(q.path).Connections)
}

// resolveFailure turns a resolver error into a recipient status and reply
// (smtpwire.ReplyFor): a permanent failure bounces with its code (null MX
// 556 5.1.10, NXDOMAIN 550 5.1.2); anything else is transient, 451 4.4.3
// when the error carries no reply.
func resolveFailure(err error) (outbound.Status, smtpwire.Reply) {
	rep := smtpwire.ReplyFor(err, smtpwire.Reply{Code: 451, Enhanced: "4.4.3", Lines: []string{"DNS lookup failed: " + err.Error()}})
	if rep.Permanent() {
		return outbound.Bounced, rep
	}
	return outbound.Transient, rep
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
		if !l.stopping && q.workers <= l.connLimit(q) {
			it = q.pop()
		}
		if it == nil {
			q.workers--
			if q.workers == 0 && q.len() == 0 {
				q.idleSince = l.clock.Now()
			}
			l.mu.Unlock()
			return
		}
		q.inFlight++
		l.mu.Unlock()
		l.ready.Add(-1)
		l.adminTake(it)
		if !l.hold(it) {
			l.deliver(q, it)
		}
		l.adminDone(it)
		l.mu.Lock()
		q.inFlight--
		l.mu.Unlock()
	}
}

// hold applies what may keep an item from its transaction now: a bounce
// or suspension rule of its path, its tenant's message rate (the node's,
// then the cluster's) and the path's rate shared by a cluster (last, so that an item another limit
// holds spends none of the fleet's tokens). A held
// item goes back to the scheduled queue until it may go, without counting
// an attempt, so that a worker never sleeps for one tenant or one rule
// while other mail waits. It reports whether the item was held (or
// bounced).
func (l *Loop) hold(it *workItem) bool {
	if l.adminHold(it) || l.xferReroute(it) { // bounced, held or re-routed by an operator (admin.go, xfer.go)
		return true
	}
	now := l.clock.Now()
	if sh := l.opts.Shaper; sh != nil {
		g := sh.Gate(it.path())
		if g.Bounce {
			l.applyAll(it, outbound.Bounced, ruleBounceReply(g.Reply))
			return true
		}
		if !g.Until.IsZero() && g.Until.After(now) {
			l.requeue(it, g.Until, now)
			return true
		}
	}
	if l.opts.TenantRate != nil {
		tenant := it.ms.env.tenant
		if !it.slot.IsZero() {
			it.slot = time.Time{} // booked earlier: its time has come
		} else if rate := l.opts.TenantRate(tenant); rate > 0 {
			if d := l.tenants.reserve(tenant, rate); d > 0 {
				it.slot = now.Add(d)
				l.requeue(it, it.slot, now)
				return true
			}
		}
	}
	if l.sharedTenantHold(it, now) {
		return true
	}
	if sr := l.opts.SharedRate; sr != nil {
		if ok, d := sr.Take(it.path()); !ok {
			if l.opts.TenantRate != nil {
				it.slot = now.Add(d) // its tenant's slot stays booked
			}
			l.requeue(it, now.Add(d), now)
			return true
		}
	}
	// Last: only a transaction about to start counts (warmup.go).
	if l.warmupHold(it, now) {
		return true
	}
	it.tenantToken = false // spent by the transaction about to start
	return false
}

// requeue puts a held item back in the scheduled queue until at. After a
// long wait its route is looked up again.
func (l *Loop) requeue(it *workItem, at, now time.Time) {
	if at.Sub(now) > time.Minute {
		it.route, it.qkey = nil, ""
	}
	l.mu.Lock()
	stopping := l.stopping
	l.mu.Unlock()
	if !stopping {
		l.schedule(it, at)
	}
}

// ruleBounceReply turns the reply that triggered a bounce rule into a
// permanent one: the 5xx class, the same subject and detail, and the
// server's text.
func ruleBounceReply(r smtpwire.Reply) smtpwire.Reply {
	out := smtpwire.Reply{Code: 550, Enhanced: "5.0.0", Lines: []string{"bounced by a shaping rule"}}
	if r.Code >= 500 {
		out.Code = r.Code
	}
	if len(r.Enhanced) > 2 {
		out.Enhanced = "5" + r.Enhanced[1:]
	}
	if t := strings.Join(r.Lines, " "); t != "" {
		out.Lines = []string{"bounced by a shaping rule after: " + strconv.Itoa(r.Code) + " " + t}
	}
	return out
}

// deliver runs the transaction of one item and applies its outcome. With
// a Transport that can pipeline (chainTransport), the items of q ready
// when its body is written follow it on the same connection (chain.go).
func (l *Loop) deliver(q *readyQueue, it *workItem) {
	a := l.prepare(it)
	if a == nil {
		return
	}
	if ct, ok := l.opts.Transport.(chainTransport); ok {
		a.first = true
		ct.DeliverChain(l.txCtx, &a.ch, &workerChain{l: l, q: q})
		return
	}
	l.finish(a, l.opts.Transport.Deliver(l.txCtx, a.ch.Route, a.ch.Env))
}

// attempt is one item on its way to a transaction: the envelope (with the
// body read from the spool) and what finish needs to apply the outcome.
type attempt struct {
	it       *workItem
	idx      []int // the recipients of the envelope, as indexes into the message's
	body     []byte
	snapshot queue.Message // the metadata as it was (without recipients), for Attempted
	ch       outbound.Chained
	first    bool // the item its worker took (not one a chain took)
	// env is the envelope ch.Env points to; idxOne and rcptOne are idx
	// and env.Rcpts for a message of one recipient (most mail), so that
	// an attempt is one allocation.
	env     outbound.Envelope
	idxOne  [1]int
	rcptOne [1]string
}

// prepare makes the attempt of an item: its pending recipients, its DSN
// parameters, its body. It returns nil when there is no transaction to
// run: the message is corrupt (quarantined), no recipient is pending, or
// the body cannot be read — the outcome is applied then.
func (l *Loop) prepare(it *workItem) *attempt {
	ms := it.ms
	ms.mu.Lock()
	if ms.corrupt {
		ms.items--
		ms.mu.Unlock()
		return nil
	}
	m := ms.msg(l.packer)
	a := &attempt{it: it, snapshot: *m}
	a.snapshot.Recipients = nil
	a.env = outbound.Envelope{From: m.From, RequireTLS: m.RequireTLS, Tenant: ms.env.tenant}
	env := &a.env
	idx := a.idxOne[:0]
	if len(it.rcpts) == 1 {
		env.Rcpts = a.rcptOne[:0]
	} else {
		idx = make([]int, 0, len(it.rcpts))
		env.Rcpts = make([]string, 0, len(it.rcpts))
	}
	for _, i := range it.rcpts {
		if m.Recipients[i].State == queue.Pending {
			env.Rcpts = append(env.Rcpts, m.Recipients[i].Addr)
			idx = append(idx, i)
		}
	}
	withDSN(env, m, idx)
	if f := l.opts.ReturnPath; f != nil && m.From != "" {
		env.From = f(m.ID, ms.env.tenant, ms.env.campaign, m.From, env.Rcpts)
	}
	a.idx = idx
	ms.mu.Unlock()
	if len(idx) == 0 {
		l.apply(it, nil, outbound.Outcome{})
		return nil
	}
	body, err := l.opts.Store.Body(&a.snapshot)
	if errors.Is(err, queue.ErrCorrupt) && l.quarantine(it, err) {
		return nil
	}
	if err != nil {
		l.log.Error("delivery: reading message body", "id", m.ID, "err", err)
		var out outbound.Outcome
		out.Results = make([]outbound.Result, len(idx))
		for k := range idx {
			out.Results[k] = outbound.Result{Rcpt: env.Rcpts[k], Status: outbound.Transient,
				Reply: smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"cannot read the message from the spool"}}}
		}
		l.apply(it, idx, out)
		return nil
	}
	out, back := l.handoverBody(it, &a.snapshot, body)
	if back {
		// An xfer rule would hand the message back to the node it came
		// from: route it again, past that rule (handover.go).
		if r, ok := l.opts.Store.(bodyReleaser); ok {
			r.ReleaseBody(body)
		}
		l.routeAgain(it)
		return nil
	}
	env.Body = out
	env.Source = it.source
	a.body = body
	a.ch = outbound.Chained{Route: it.route, Env: env, Ref: a}
	return a
}

// releaseBody gives the attempt's body back to the spool: the transaction
// has ended.
func (l *Loop) releaseBody(a *attempt) {
	a.ch.Env.Body = nil
	if r, ok := l.opts.Store.(bodyReleaser); ok {
		r.ReleaseBody(a.body)
	}
	a.body = nil
}

// finish applies the outcome of an attempt's transaction.
func (l *Loop) finish(a *attempt, out outbound.Outcome) {
	l.releaseBody(a)
	it := a.it
	if sh := l.opts.Shaper; sh != nil && sh.Observe(it.path(), &out) {
		// A bounce rule matched: what the server deferred bounces.
		for k := range out.Results {
			r := &out.Results[k]
			if r.Status == outbound.Transient && !r.Local {
				r.Status, r.Reply = outbound.Bounced, ruleBounceReply(r.Reply)
			}
		}
	}
	l.xferOutcome(it, &out) // after the shaper: a target's refusal bounces nothing
	if f := l.opts.Attempted; f != nil {
		f(&Attempt{Path: it.path(), ID: a.snapshot.ID, Tenant: it.ms.env.tenant, Campaign: it.ms.env.campaign,
			Attempts: a.snapshot.Attempts, Outcome: &out})
	}
	l.apply(it, a.idx, out)
}

// quarantine drops a message whose body the spool cannot read back
// (torn, failing its checksum, not decompressing): the spool takes it out
// (Store.Quarantine; the engine logs and counts it, and the admin API shows
// it as corrupt), and the loop forgets it and drops its other work items as
// they come. No record is written and no bounce sent, since what the
// message says is not known for sure (Postfix's "corrupt" queue does the
// same). It reports false when the spool did not take the message out
// (the record reads back intact, or the index cannot be written): the
// attempt then counts as a transient failure and is retried.
func (l *Loop) quarantine(it *workItem, cause error) bool {
	ms := it.ms
	if err := l.opts.Store.Quarantine(ms.id); err != nil && !errors.Is(err, queue.ErrNotFound) {
		if !errors.Is(err, queue.ErrNotCorrupt) { // that one needs no word: the next attempt reads it
			l.log.Error("delivery: the spool did not quarantine a message it could not read",
				"id", ms.id, "err", err, "read_err", cause)
		}
		return false
	}
	ms.mu.Lock()
	ms.corrupt = true
	ms.items--
	ms.mu.Unlock()
	l.forget(ms)
	return true
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
		for _, d := range l.runDone {
			<-d
		}
	}
	// Wait for the DNS lookups to finish (they see runCtx cancelled).
	for _, sem := range l.resolveSem {
		for i := 0; i < cap(sem); i++ {
			sem <- struct{}{}
		}
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
