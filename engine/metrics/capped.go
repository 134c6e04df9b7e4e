package metrics

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outcome is what happened to one recipient: the event a labelled counter
// counts. The names follow the log record types.
type Outcome uint8

// The outcomes, one counter family each per bounded label.
const (
	OutcomeReceived         Outcome = iota // gannet_<label>_messages_received_total
	OutcomeDelivered                       // gannet_<label>_messages_delivered_total
	OutcomeTransientFailure                // gannet_<label>_messages_transient_failures_total
	OutcomeBounced                         // gannet_<label>_messages_bounced_total
	OutcomeExpired                         // gannet_<label>_messages_expired_total
	numOutcomes
)

// suffix is the family name after "gannet_<label>_messages_".
func (o Outcome) suffix() string {
	switch o {
	case OutcomeReceived:
		return "received_total"
	case OutcomeDelivered:
		return "delivered_total"
	case OutcomeTransientFailure:
		return "transient_failures_total"
	case OutcomeBounced:
		return "bounced_total"
	}
	return "expired_total"
}

func (o Outcome) help() string {
	switch o {
	case OutcomeReceived:
		return "Recipients of accepted messages"
	case OutcomeDelivered:
		return "Recipients whose MX host accepted the message"
	case OutcomeTransientFailure:
		return "Delivery attempts per recipient that failed temporarily"
	case OutcomeBounced:
		return "Recipients that failed permanently"
	}
	return "Recipients given up after max_retry_age"
}

// OtherLabel is the label value that stands for every value not given a
// series of its own.
const OtherLabel = "other"

// DefaultMaxLabels is the number of values a bounded label gets by default
// ([metrics] max_destination_labels).
const DefaultMaxLabels = 50

// rankEvery is how often the values with their own series are chosen
// again by recent volume.
const rankEvery = time.Minute

// CappedCounters counts outcomes per value of one label (destination site,
// destination domain, tenant, campaign) with a bounded number of series:
// at most Limit values have series of their own, and the rest are counted
// under the value "other".
//
// Which values get their own series follows volume. Until Limit values
// are known, each new value gets one at once. After that, at most once a
// minute (when the metrics are written), every known value's score —
// events in the last minute plus half its previous score, so about two
// minutes of memory — is ranked, and the top Limit own the series.
// Ties keep the values that already have one, so the set does not churn.
//
// Every series stays monotonic, as Prometheus counters must: a value that
// gains a series starts it from zero (its earlier events stay in "other"),
// and one that loses its series stops being written (Prometheus marks it
// stale) while "other" counts its events from then on. So rate() over each
// series is right, and the sum over all values is right except for the
// events of the scrape interval in which a value switched. Values with no
// events for a few minutes and no series are forgotten; at most maxTracked
// values are remembered at once, and events of values beyond that go to
// "other" directly.
//
// The empty value is not counted (mail without a tenant has no tenant
// series). A value literally named "other" shares the "other" series.
type CappedCounters struct {
	label    string    // Prometheus label name: "site"
	prefix   string    // "gannet_site_messages_"
	what     string    // for HELP: "per destination site"
	outcomes []Outcome // the families written
	now      func() time.Time

	mu        sync.Mutex
	limit     int
	keys      map[string]*keyCounts
	named     int
	other     [numOutcomes]uint64
	otherUsed bool
	lastRank  time.Time
}

type keyCounts struct {
	n      [numOutcomes]uint64 // since the value got its series
	named  bool                // has its own series
	window uint64              // events since the last ranking
	score  float64             // recent volume, decayed by half per ranking
}

// newCapped returns counters for one label. The families are
// prefix+outcome suffix for each of outcomes.
func newCapped(label, prefix, what string, limit int, now func() time.Time, outcomes ...Outcome) *CappedCounters {
	return &CappedCounters{
		label: label, prefix: prefix, what: what, outcomes: outcomes, now: now,
		limit: max(limit, 0), keys: make(map[string]*keyCounts), lastRank: now(),
	}
}

// maxTracked bounds the values remembered between rankings.
func (c *CappedCounters) maxTracked() int { return max(4096, 64*c.limit) }

// Inc counts one event of outcome o for value key. It is safe for
// concurrent use and does not allocate once key is known.
func (c *CappedCounters) Inc(key string, o Outcome) {
	if key == "" || o >= numOutcomes {
		return
	}
	c.mu.Lock()
	k := c.keys[key]
	if k == nil {
		if len(c.keys) >= c.maxTracked() {
			c.other[o]++
			c.otherUsed = true
			c.mu.Unlock()
			return
		}
		k = &keyCounts{}
		c.keys[strings.Clone(key)] = k
		if c.named < c.limit {
			k.named = true
			c.named++
		}
	}
	k.window++
	if k.named {
		k.n[o]++
	} else {
		c.other[o]++
		c.otherUsed = true
	}
	c.mu.Unlock()
}

// SetLimit changes how many values have a series of their own, and ranks
// the values again at once.
func (c *CappedCounters) SetLimit(n int) {
	c.mu.Lock()
	c.limit = max(n, 0)
	c.rankLocked(c.now())
	c.mu.Unlock()
}

// Get returns the count of outcome o in the series of value key (which may
// be OtherLabel), and whether that series exists.
func (c *CappedCounters) Get(key string, o Outcome) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key == OtherLabel {
		return c.other[o], c.otherUsed
	}
	k := c.keys[key]
	if k == nil || !k.named {
		return 0, false
	}
	return k.n[o], true
}

// rankLocked chooses the values with their own series by score.
func (c *CappedCounters) rankLocked(now time.Time) {
	c.lastRank = now
	type entry struct {
		key string
		k   *keyCounts
	}
	list := make([]entry, 0, len(c.keys))
	for key, k := range c.keys {
		k.score = k.score/2 + float64(k.window)
		k.window = 0
		list = append(list, entry{key, k})
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].k, list[j].k
		if a.score != b.score {
			return a.score > b.score
		}
		if a.named != b.named {
			return a.named
		}
		return list[i].key < list[j].key
	})
	c.named = 0
	for i, e := range list {
		want := i < c.limit
		switch {
		case want && !e.k.named:
			e.k.named, e.k.n = true, [numOutcomes]uint64{}
		case !want && e.k.named:
			e.k.named, e.k.n = false, [numOutcomes]uint64{}
		}
		if e.k.named {
			c.named++
		} else if e.k.score < 0.5 {
			delete(c.keys, e.key) // idle for a few rankings
		}
	}
}

// appendTo writes the families in the Prometheus text format, ranking the
// values first when a ranking is due.
func (c *CappedCounters) appendTo(out []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.lastRank) >= rankEvery {
		c.rankLocked(now)
	}
	keys := make([]string, 0, c.named)
	for key, k := range c.keys {
		if k.named {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 && !c.otherUsed {
		return out
	}
	sort.Strings(keys)
	for _, o := range c.outcomes {
		name := c.prefix + o.suffix()
		out = appendHeader(out, name, o.help()+" "+c.what+" (the busiest "+strconv.Itoa(c.limit)+` by volume; the rest as `+c.label+`="other").`, "counter")
		for _, key := range keys {
			out = appendSample(out, name, c.label, key, float64(c.keys[key].n[o]))
		}
		if c.otherUsed {
			out = appendSample(out, name, c.label, OtherLabel, float64(c.other[o]))
		}
	}
	return out
}

// appendHeader writes the HELP and TYPE lines of a family.
func appendHeader(out []byte, name, help, typ string) []byte {
	out = append(out, "# HELP "...)
	out = append(out, name...)
	out = append(out, ' ')
	out = append(out, help...)
	out = append(out, "\n# TYPE "...)
	out = append(out, name...)
	out = append(out, ' ')
	out = append(out, typ...)
	return append(out, '\n')
}

// appendSample writes one sample with one label.
func appendSample(out []byte, name, label, value string, v float64) []byte {
	out = append(out, name...)
	out = append(out, '{')
	out = append(out, label...)
	out = append(out, `="`...)
	out = append(out, escapeLabel(value)...)
	out = append(out, `"} `...)
	out = strconv.AppendFloat(out, v, 'g', -1, 64)
	return append(out, '\n')
}
