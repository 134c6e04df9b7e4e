package console

import (
	"slices"
	"strings"
	"sync"
	"time"

	"gannet/engine/logrec"
	"gannet/mailaddr"
)

// Bounds of Recent's memory.
const (
	// RecentRecords is how many log records Recent keeps for the
	// message pages (the newest).
	RecentRecords = 8192
	// LastErrors is how many errors Recent keeps per site and domain.
	LastErrors = 5
	// maxDestinations bounds the sites and domains Recent keeps stats
	// of; past it, those idle longest are forgotten.
	maxDestinations = 20000
	// maxLatencies bounds the latencies kept for one interval's
	// quantiles (a uniform sample of the interval beyond it).
	maxLatencies = 4096
)

// ErrorEntry is one failed attempt or bounce of a destination.
type ErrorEntry struct {
	Time      time.Time
	Type      logrec.Type
	Recipient string
	Reply     string
}

// DestStats is what Recent knows of one site or domain.
type DestStats struct {
	// Rate is recipients delivered per second over the last minute or two.
	Rate float64
	// Deferral is the share of attempts of that time that failed
	// temporarily (0 to 1); Attempts is how many there were.
	Deferral float64
	Attempts int
	// Errors are the last errors, newest first.
	Errors []ErrorEntry
}

// outcomes counts one minute of a destination's outcomes.
type outcomes struct {
	delivered, deferred, bounced int
}

type destState struct {
	minute   int64        // Unix minute of cur
	cur, old outcomes     // this minute and the one before
	errs     []ErrorEntry // ring of LastErrors
	nextErr  int
	seen     time.Time
}

// Recent keeps what the console shows of the latest log records: the
// records themselves (a ring of RecentRecords), per site and domain the
// recent outcomes and last errors, and the delivery latencies of the
// current interval. Feed it every record (Record); its memory is bounded.
type Recent struct {
	now func() time.Time

	mu      sync.Mutex
	ring    []logrec.Record
	next    int
	sites   map[string]*destState
	domains map[string]*destState
	lat     []float64
	latSeen int
	tls     uint64 // records of attempts a TLS failure decided
	tenants map[string]*GroupCounts
	camps   map[string]*GroupCounts
	rnd     uint64
}

// NewRecent returns an empty Recent reading the clock now (nil: time.Now).
func NewRecent(now func() time.Time) *Recent {
	if now == nil {
		now = time.Now
	}
	return &Recent{now: now, ring: make([]logrec.Record, 0, RecentRecords),
		sites: map[string]*destState{}, domains: map[string]*destState{},
		tenants: map[string]*GroupCounts{}, camps: map[string]*GroupCounts{}, rnd: 0x9e3779b97f4a7c15}
}

// Record takes one log record (logrec.Options.OnRecord).
func (r *Recent) Record(rec *logrec.Record) {
	switch rec.Type {
	case logrec.Rejection:
		return
	}
	now := r.now()
	domain := mailaddr.Domain(rec.Recipient)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) < RecentRecords {
		r.ring = append(r.ring, *rec)
	} else {
		r.ring[r.next] = *rec
	}
	r.next = (r.next + 1) % RecentRecords
	if rec.TLSResultType != "" {
		r.tls++
	}
	r.count(r.tenants, rec.Tenant, rec)
	r.count(r.camps, rec.Campaign, rec)
	var oc func(*outcomes)
	failed := false
	switch rec.Type {
	case logrec.Delivery:
		oc = func(o *outcomes) { o.delivered++ }
		if !rec.Created.IsZero() {
			r.latency(rec.Timestamp.Sub(rec.Created).Seconds())
		}
	case logrec.TransientFailure:
		oc, failed = func(o *outcomes) { o.deferred++ }, true
	case logrec.Bounce, logrec.Expiration:
		oc, failed = func(o *outcomes) { o.bounced++ }, true
	default:
		return
	}
	for _, d := range []struct {
		m    map[string]*destState
		name string
	}{{r.sites, rec.Site}, {r.domains, domain}} {
		if d.name == "" {
			continue
		}
		st := r.dest(d.m, d.name, now)
		if st == nil {
			continue
		}
		oc(&st.cur)
		if failed {
			e := ErrorEntry{Time: rec.Timestamp, Type: rec.Type, Recipient: rec.Recipient, Reply: replyText(rec.Response)}
			if len(st.errs) < LastErrors {
				st.errs = append(st.errs, e)
			} else {
				st.errs[st.nextErr] = e
			}
			st.nextErr = (st.nextErr + 1) % LastErrors
		}
	}
}

// replyText writes a record's response as an SMTP reply line.
func replyText(resp logrec.Response) string {
	var b strings.Builder
	if resp.Code != 0 {
		b.WriteString(itoa(resp.Code))
	}
	if resp.EnhancedCode != "" {
		b.WriteByte(' ')
		b.WriteString(resp.EnhancedCode)
	}
	if resp.Content != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ReplaceAll(resp.Content, "\n", " "))
	}
	return b.String()
}

// dest returns the state of name in m, rolled to the minute of now;
// nil when m is full of destinations active in the last 10 minutes.
func (r *Recent) dest(m map[string]*destState, name string, now time.Time) *destState {
	st := m[name]
	if st == nil {
		if len(m) >= maxDestinations {
			for k, v := range m {
				if now.Sub(v.seen) > 10*time.Minute {
					delete(m, k)
				}
			}
			if len(m) >= maxDestinations {
				return nil
			}
		}
		st = &destState{}
		m[strings.Clone(name)] = st
	}
	st.roll(now)
	st.seen = now
	return st
}

// roll moves the counts on to the minute of now.
func (st *destState) roll(now time.Time) {
	min := now.Unix() / 60
	switch {
	case min == st.minute:
	case min == st.minute+1:
		st.old, st.cur = st.cur, outcomes{}
	default:
		st.old, st.cur = outcomes{}, outcomes{}
	}
	st.minute = min
}

// latency adds one delivery latency to the interval's sample (reservoir
// sampling past maxLatencies).
func (r *Recent) latency(s float64) {
	r.latSeen++
	if len(r.lat) < maxLatencies {
		r.lat = append(r.lat, s)
		return
	}
	r.rnd ^= r.rnd << 13
	r.rnd ^= r.rnd >> 7
	r.rnd ^= r.rnd << 17
	if i := int(r.rnd % uint64(r.latSeen)); i < maxLatencies {
		r.lat[i] = s
	}
}

// TakeLatency returns the median and 95th percentile of the delivery
// latencies since the last call, in seconds (0, 0 when none), and starts
// a new interval.
func (r *Recent) TakeLatency() (p50, p95 float64) {
	r.mu.Lock()
	lat := slices.Clone(r.lat)
	r.lat, r.latSeen = r.lat[:0], 0
	r.mu.Unlock()
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return q(0.5), q(0.95)
}

// TLSFailures counts the records of attempts that a TLS failure decided.
func (r *Recent) TLSFailures() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tls
}

// Site returns the recent stats of a site.
func (r *Recent) Site(site string) DestStats { return r.stats(r.sites, site) }

// Domain returns the recent stats of a domain.
func (r *Recent) Domain(domain string) DestStats { return r.stats(r.domains, domain) }

func (r *Recent) stats(m map[string]*destState, name string) DestStats {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	st := m[name]
	if st == nil {
		return DestStats{}
	}
	st.roll(now)
	var ds DestStats
	secs := 60 + float64(now.Unix()%60)
	delivered := st.cur.delivered + st.old.delivered
	deferred := st.cur.deferred + st.old.deferred
	ds.Attempts = delivered + deferred + st.cur.bounced + st.old.bounced
	ds.Rate = float64(delivered) / secs
	if ds.Attempts > 0 {
		ds.Deferral = float64(deferred) / float64(ds.Attempts)
	}
	for i := range st.errs {
		ds.Errors = append(ds.Errors, st.errs[(st.nextErr-1-i+2*LastErrors)%len(st.errs)])
	}
	return ds
}

// ForMessage returns the records kept of message id, oldest first.
func (r *Recent) ForMessage(id string) []logrec.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logrec.Record
	r.each(func(rec *logrec.Record) {
		if rec.ID == id {
			out = append(out, *rec)
		}
	})
	return out
}

// Search returns the newest record of each message whose records match
// every non-empty field (recipient and sender: a case-insensitive
// substring; the others exact), newest first, at most limit.
func (r *Recent) Search(f Filter, limit int) []logrec.Record {
	rcpt, sender := strings.ToLower(f.Recipient), strings.ToLower(f.Sender)
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []logrec.Record
	for i := len(r.ring) - 1; i >= 0 && len(out) < limit; i-- {
		rec := &r.ring[(r.next-1-(len(r.ring)-1-i)+2*len(r.ring))%len(r.ring)]
		if seen[rec.ID] ||
			f.ID != "" && rec.ID != f.ID ||
			f.Tenant != "" && rec.Tenant != f.Tenant ||
			f.Campaign != "" && rec.Campaign != f.Campaign ||
			rcpt != "" && !strings.Contains(strings.ToLower(rec.Recipient), rcpt) ||
			sender != "" && !strings.Contains(strings.ToLower(rec.Sender), sender) {
			continue
		}
		seen[rec.ID] = true
		out = append(out, *rec)
	}
	return out
}

// each calls fn for every record kept, oldest first; under r.mu.
func (r *Recent) each(fn func(*logrec.Record)) {
	n := len(r.ring)
	start := 0
	if n == RecentRecords {
		start = r.next
	}
	for i := 0; i < n; i++ {
		fn(&r.ring[(start+i)%n])
	}
}

// GroupCounts are a tenant's or campaign's outcomes since the relay
// started (recipients; received: messages).
type GroupCounts struct {
	Received, Delivered, Deferred, Bounced int
	// Complaints counts the feedback reports (ARF, Feedback records) and
	// LateBounces the asynchronous bounces (DSNs, OOB records) matched to
	// the tenant's or campaign's mail by their signed reference.
	Complaints, LateBounces int
	// ByClass counts the bounces and expirations by bounce class.
	ByClass map[string]int
}

// count adds rec to the counts of name in m (bounded like the
// destinations: past maxDestinations names, new ones are not counted).
func (r *Recent) count(m map[string]*GroupCounts, name string, rec *logrec.Record) {
	if name == "" {
		return
	}
	g := m[name]
	if g == nil {
		if len(m) >= maxDestinations {
			return
		}
		g = &GroupCounts{ByClass: map[string]int{}}
		m[strings.Clone(name)] = g
	}
	switch rec.Type {
	case logrec.Reception:
		g.Received++
	case logrec.Delivery:
		g.Delivered++
	case logrec.TransientFailure:
		g.Deferred++
	case logrec.Feedback:
		if rec.Report != nil && rec.Report.Matched {
			g.Complaints++
		}
	case logrec.OOB:
		if rec.Report != nil && rec.Report.Matched {
			g.LateBounces++
		}
	case logrec.Bounce, logrec.Expiration, logrec.AdminBounce:
		g.Bounced++
		class := rec.BounceClassification
		if class == "" {
			class = string(rec.Type)
		}
		if len(g.ByClass) < 64 {
			g.ByClass[strings.Clone(class)]++
		} else {
			g.ByClass["other"]++
		}
	}
}

// Groups returns copies of the tenants' and campaigns' counts.
func (r *Recent) Groups() (tenants, campaigns map[string]GroupCounts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := func(m map[string]*GroupCounts) map[string]GroupCounts {
		out := make(map[string]GroupCounts, len(m))
		for k, v := range m {
			c := *v
			c.ByClass = make(map[string]int, len(v.ByClass))
			for ck, cv := range v.ByClass {
				c.ByClass[ck] = cv
			}
			out[k] = c
		}
		return out
	}
	return cp(r.tenants), cp(r.camps)
}

// DomainNames returns the domains with outcomes in the last 10 minutes
// (so that one whose mail was all delivered can still be suspended from
// the destinations page).
func (r *Recent) DomainNames() []string {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.domains))
	for name, st := range r.domains {
		if now.Sub(st.seen) <= 10*time.Minute {
			out = append(out, name)
		}
	}
	return out
}
