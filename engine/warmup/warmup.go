// Package warmup keeps the IP warm-up allowances of egress sources: how
// many messages a warming source may send today to each provider, how many
// it has sent, and the day its warm-up began (kept in the spool, so that a
// restart does not start the ramp again, and with a cluster in Redis, so
// that the fleet as a whole keeps to the allowance: shared.go).
//
// A day is a calendar day in UTC; day 1 is the start date. What a source
// may send to a provider on day d is its schedule's (the [[egress_source]]
// warmup keys: a ramp or a table); -1 means no limit.
package warmup

import (
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Store keeps the start dates (*queue.Spool has it: its admin keyspace).
type Store interface {
	PutAdminState(key string, value []byte) error
	AdminStates(fn func(key string, value []byte) error) error
}

// Source is the warm-up schedule of one egress source.
type Source struct {
	Name string
	// Allowance is what the source may send to provider ("" for
	// destinations no provider matches) on day (1 = the first); -1: no
	// limit.
	Allowance func(day int, provider string) int
	Start     time.Time // day 1 (configured); zero: the day of first use, stored
}

// Kind is the "kind" of a stored start date: the same JSON shape as the
// delivery loop's stored admin rules, which leave it alone.
const Kind = "warmup"

// keyPrefix is the admin-keyspace prefix of the stored start dates.
const keyPrefix = Kind + "/"

// storedStart is the durable form of a start date, with the counts of the
// day they were last written (so that a restart does not grant the day's
// allowance again; written each twentieth of an allowance, so a crash
// forgets at most that much).
type storedStart struct {
	Kind    string         `json:"kind"`
	ID      string         `json:"id"` // the source name
	Created time.Time      `json:"created"`
	Day     time.Time      `json:"day,omitzero"`
	Used    map[string]int `json:"used,omitempty"`
}

// Tracker counts the messages of the warming sources.
type Tracker struct {
	now   func() time.Time
	store Store
	log   *slog.Logger

	mu      sync.Mutex
	sources map[string]*source
	shared  Shared // the cluster's counts (shared.go); nil: this node's alone
}

type source struct {
	cfg   Source
	start time.Time      // midnight UTC of day 1; zero until first use
	day   time.Time      // the day used counts
	used  map[string]int // by provider, on day

	// With a cluster (shared.go): the part of the batches taken from the
	// cluster's allowance not yet spent, the cluster's count at the last
	// batch, by provider, on day; and until when the node counts on its
	// own share (the cluster did not answer).
	leased, fleet map[string]int
	localUntil    time.Time
}

// New returns a tracker of sources; start dates of sources without a
// configured one are read from store (nil: kept in memory only).
func New(sources []Source, store Store, now func() time.Time, log *slog.Logger) (*Tracker, error) {
	t := &Tracker{now: now, store: store, log: log, sources: map[string]*source{}}
	for _, s := range sources {
		t.sources[s.Name] = &source{cfg: s, start: midnight(s.Start), used: map[string]int{}, leased: map[string]int{}, fleet: map[string]int{}}
	}
	if store == nil {
		return t, nil
	}
	err := store.AdminStates(func(key string, v []byte) error {
		name, ok := strings.CutPrefix(key, keyPrefix)
		if !ok {
			return nil
		}
		var st storedStart
		if err := json.Unmarshal(v, &st); err != nil {
			log.Error("warmup: a stored start date does not decode", "key", key, "err", err)
			return nil
		}
		s := t.sources[name]
		if s == nil {
			return nil
		}
		if s.start.IsZero() {
			s.start = midnight(st.Created)
		}
		if !st.Day.IsZero() {
			s.day = st.Day
			for p, n := range st.Used {
				s.used[p] = n
			}
		}
		return nil
	})
	return t, err
}

func midnight(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(24 * time.Hour)
}

// Has reports whether source has a warm-up schedule (warm or not yet).
func (t *Tracker) Has(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sources[name] != nil
}

// Take counts one message from source to provider. It reports false when
// the source's allowance for the provider is used up today, with the time
// it comes back (the next midnight UTC). A source without a schedule
// always may send.
func (t *Tracker) Take(name, provider string) (ok bool, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sources[name]
	if s == nil {
		return true, time.Time{}
	}
	today := t.today(s)
	allow := s.allowance(today, provider)
	if allow < 0 {
		return true, time.Time{}
	}
	if t.shared != nil {
		if ok, handled := t.takeShared(s, provider, today, allow); handled && !ok {
			return false, today.Add(24 * time.Hour)
		} else if !handled {
			allow = t.localShare(allow)
		}
	}
	if s.used[provider] >= allow {
		return false, today.Add(24 * time.Hour)
	}
	s.used[provider]++
	if n := s.used[provider]; n == allow || n%max(1, allow/20) == 0 {
		t.storeStart(s)
	}
	return true, time.Time{}
}

// Remaining returns what source may still send to provider today (-1: no
// limit). It counts nothing, and starts no ramp.
func (t *Tracker) Remaining(name, provider string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sources[name]
	if s == nil {
		return -1
	}
	today := midnight(t.now())
	s.roll(today)
	allow := s.allowance(today, provider)
	if allow < 0 {
		return -1
	}
	return s.remaining(provider, allow)
}

// remaining is what s may still send to provider today of allow: with a
// cluster, what the cluster's count leaves and the batch not yet spent.
func (s *source) remaining(provider string, allow int) int {
	if fleet, ok := s.fleet[provider]; ok {
		return max(0, allow-fleet) + s.leased[provider]
	}
	return max(0, allow-s.used[provider])
}

// Day returns the warm-up day of source today (0: not started, or not
// warming).
func (t *Tracker) Day(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sources[name]
	if s == nil || s.start.IsZero() {
		return 0
	}
	return s.dayOf(midnight(t.now()))
}

// today returns today's midnight, starting the ramp of s (and storing its
// start) on its first use, and resets the counts of a new day.
func (t *Tracker) today(s *source) time.Time {
	today := midnight(t.now())
	if s.start.IsZero() {
		s.start = today
		t.storeStart(s)
	}
	s.roll(today)
	return today
}

func (s *source) roll(today time.Time) {
	if !s.day.Equal(today) {
		s.day = today
		clear(s.used)
		clear(s.leased)
		clear(s.fleet)
	}
}

func (s *source) dayOf(today time.Time) int {
	if s.start.IsZero() || today.Before(s.start) {
		return 1
	}
	return int(today.Sub(s.start)/(24*time.Hour)) + 1
}

// allowance is the day's figure for provider; -1: no limit.
func (s *source) allowance(today time.Time, provider string) int {
	return s.cfg.Allowance(s.dayOf(today), provider)
}

// storeStart writes the start date of s (a failure is logged: the ramp
// starts again at the next restart).
func (t *Tracker) storeStart(s *source) {
	if t.store == nil {
		return
	}
	v, _ := json.Marshal(storedStart{Kind: Kind, ID: s.cfg.Name, Created: s.start, Day: s.day, Used: s.used})
	if err := t.store.PutAdminState(keyPrefix+s.cfg.Name, v); err != nil {
		t.log.Error("warmup: storing the start date", "egress_source", s.cfg.Name, "err", err)
	}
}

// Status is the state of one source's allowance to one provider today.
type Status struct {
	Source    string    `json:"source"`
	Provider  string    `json:"provider"` // "default": destinations no provider matches
	Start     time.Time `json:"start,omitzero"`
	Day       int       `json:"day"`       // 0: not started
	Allowance int       `json:"allowance"` // -1: no limit (warm for this provider)
	Used      int       `json:"used"`
	Remaining int       `json:"remaining"` // -1: no limit
}

// Statuses returns the state of every warming source for each of
// providers ("" for the rest) and any other provider it sent to today,
// sorted by source and provider.
func (t *Tracker) Statuses(providers []string) []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	today := midnight(t.now())
	var out []Status
	for _, s := range t.sources {
		s.roll(today)
		seen := map[string]bool{}
		add := func(p string) {
			if seen[p] {
				return
			}
			seen[p] = true
			st := Status{Source: s.cfg.Name, Provider: p, Start: s.start, Used: s.used[p]}
			if !s.start.IsZero() {
				st.Day = s.dayOf(today)
			}
			st.Allowance = s.allowance(today, p)
			st.Remaining = -1
			if st.Allowance >= 0 {
				st.Remaining = s.remaining(p, st.Allowance)
			}
			if p == "" {
				st.Provider = "default"
			}
			out = append(out, st)
		}
		for _, p := range providers {
			add(p)
		}
		for p := range s.used {
			add(p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Provider < out[j].Provider
	})
	return out
}
