package mtasts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Results of a policy fetch, the values of
// gannet_mta_sts_policy_fetches_total{result}.
const (
	FetchOK      = "ok"      // fetched and parsed
	FetchError   = "error"   // not fetched (DNS, connection, TLS, HTTP, size, timeout)
	FetchInvalid = "invalid" // fetched, but the file does not parse
)

// maxFailed is the number of failed fetches remembered before the old
// ones are forgotten.
const maxFailed = 1024

// CacheFile is the name of the file, in Options.Dir, that keeps the
// policies across restarts.
const CacheFile = "policies.json"

// PolicyFetcher fetches the policy of a domain (*Fetcher does).
type PolicyFetcher interface {
	Fetch(ctx context.Context, domain string) (*Policy, error)
}

// Options configure a Cache.
type Options struct {
	Resolver Resolver      // TXT lookups of "_mta-sts.DOMAIN"
	Fetcher  PolicyFetcher // policy fetches
	// Dir holds CacheFile; "" keeps the policies in memory only.
	Dir string
	// RetryAfterFailure: after a failed fetch, a domain is not fetched
	// again before this long (5m when 0), so that a policy server that is
	// down does not slow every delivery; its cached policy stays in force.
	RetryAfterFailure time.Duration
	// OnFetch, when set, is called after every fetch with its result
	// (FetchOK, FetchError, FetchInvalid) and the error.
	OnFetch func(domain, result string, err error)
	// OnSaveError, when set, is told that the cache file could not be
	// written (the policies stay in force in memory).
	OnSaveError func(error)
	Now         func() time.Time // time.Now
}

// Result is the policy in force for a domain.
type Result struct {
	Domain string
	// Policy is nil when the domain has no policy in force. It is shared:
	// callers must not modify it.
	Policy *Policy
	// ID is the id of the TXT record the policy was fetched under.
	ID string
	// FetchResult (FetchError or FetchInvalid) and FetchErr say why a
	// domain that publishes an MTA-STS record has no policy in force: its
	// policy could not be fetched (now, or a moment ago; RFC 8460 §4.3.2.2
	// reports such sessions). "" and nil otherwise.
	FetchResult string
	FetchErr    error
}

// Enforced reports whether the result is a policy in enforce mode.
func (r Result) Enforced() bool { return r.Policy != nil && r.Policy.Mode == ModeEnforce }

// Testing reports whether the result is a policy in testing mode.
func (r Result) Testing() bool { return r.Policy != nil && r.Policy.Mode == ModeTesting }

// entry is one cached policy; it is never modified once stored.
type entry struct {
	ID      string    `json:"id"`
	Mode    string    `json:"mode"`
	MX      []string  `json:"mx"`
	MaxAge  int64     `json:"max_age"`
	Fetched time.Time `json:"fetched"`
	Expires time.Time `json:"expires"`
	policy  *Policy
}

// cacheFile is the layout of CacheFile.
type cacheFile struct {
	Version  int               `json:"version"` // 1
	Policies map[string]*entry `json:"policies"`
}

// Cache keeps the MTA-STS policies in force, refreshes them (§5.1) and
// persists them. It is safe for concurrent use.
type Cache struct {
	opts   Options
	flight singleflight.Group

	mu         sync.Mutex
	entries    map[string]*entry
	failed     map[string]time.Time    // domain → time of the last failed fetch
	failure    map[string]fetchFailure // domain → why its last fetch failed (beside failed)
	refreshing map[string]bool         // domains with a background refresh running
	closed     bool

	saveMu sync.Mutex // one file write at a time

	// Background refreshes run under ctx, which Close cancels.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

// NewCache returns a Cache, loading the policies saved in Options.Dir. A
// file that does not read or decode is reported and ignored: the policies
// are then fetched again.
func NewCache(opts Options) (*Cache, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryAfterFailure <= 0 {
		opts.RetryAfterFailure = 5 * time.Minute
	}
	c := &Cache{opts: opts, entries: map[string]*entry{}, failed: map[string]time.Time{}, failure: map[string]fetchFailure{}, refreshing: map[string]bool{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if opts.Dir == "" {
		return c, nil
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(opts.Dir, CacheFile))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("mta-sts cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil {
		return c, fmt.Errorf("mta-sts cache %s: %w", filepath.Join(opts.Dir, CacheFile), err)
	}
	now := opts.Now()
	for d, e := range f.Policies {
		if e == nil || !now.Before(e.Expires) {
			continue
		}
		p := &Policy{MX: e.MX, MaxAge: e.MaxAge}
		switch e.Mode {
		case "enforce":
			p.Mode = ModeEnforce
		case "testing":
			p.Mode = ModeTesting
		case "none":
			p.Mode = ModeNone
		default:
			continue
		}
		e.policy = p
		c.entries[d] = e
	}
	return c, nil
}

// Len returns the number of cached policies.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Lookup returns the policy in force for mail to domain (§5.1): it looks
// up the TXT record, and uses the cached policy when its id is the
// record's and it has not expired; otherwise it fetches the policy. When
// there is no usable TXT record, or the fetch fails, a cached policy that
// has not expired stays in force; without one the domain has no policy.
// Lookup never fails: no policy is the answer to every error.
func (c *Cache) Lookup(ctx context.Context, domain string) Result {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	now := c.opts.Now()
	c.mu.Lock()
	e := c.entries[domain]
	c.mu.Unlock()
	if e != nil && !now.Before(e.Expires) {
		e = nil // expired (§5.1: max_age)
	}
	cached := Result{Domain: domain}
	if e != nil {
		cached.Policy, cached.ID = e.policy, e.ID
	}

	txts, err := c.opts.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	if err != nil {
		return cached
	}
	rec, err := SelectRecord(txts)
	if err != nil {
		return cached
	}
	if e != nil && e.ID == rec.ID {
		if now.Sub(e.Fetched) >= refreshAge(e.policy) {
			c.refreshInBackground(domain, rec.ID, now)
		}
		return cached
	}
	// A new id, or nothing (valid) cached: fetch, unless a fetch failed
	// a moment ago.
	c.mu.Lock()
	last, failed := c.failed[domain]
	c.mu.Unlock()
	if failed && now.Sub(last) < c.opts.RetryAfterFailure {
		return c.withFailure(cached)
	}
	v, _, _ := c.flight.Do(domain, func() (any, error) {
		return c.fetch(context.WithoutCancel(ctx), domain, rec.ID), nil
	})
	if ne := v.(*entry); ne != nil {
		return Result{Domain: domain, Policy: ne.policy, ID: ne.ID}
	}
	return c.withFailure(cached)
}

// fetchFailure is why a domain's last fetch failed.
type fetchFailure struct {
	result string // FetchError, FetchInvalid
	err    error
}

// withFailure adds to r, a result without a policy, why its fetch failed.
func (c *Cache) withFailure(r Result) Result {
	if r.Policy != nil {
		return r
	}
	c.mu.Lock()
	f, ok := c.failure[r.Domain]
	c.mu.Unlock()
	if ok {
		r.FetchResult, r.FetchErr = f.result, f.err
	}
	return r
}

// refreshAge is how old a cached policy may get before it is fetched again
// in the background, its id unchanged: half its max_age, and at most a
// day. RFC 8461 §10.1 asks senders to refresh policies before they expire,
// so that a policy whose id never changes does not lapse, leaving a window
// in which an attacker who blocks the fetch finds the domain unprotected.
func refreshAge(p *Policy) time.Duration {
	return min(p.MaxAgeDuration()/2, 24*time.Hour)
}

// refreshInBackground fetches the policy of domain again without making
// the delivery that noticed wait; the cached policy stays in force
// meanwhile, and after a failure (§5.1).
func (c *Cache) refreshInBackground(domain, id string, now time.Time) {
	c.mu.Lock()
	last, failed := c.failed[domain]
	if c.closed || c.refreshing[domain] || failed && now.Sub(last) < c.opts.RetryAfterFailure {
		c.mu.Unlock()
		return
	}
	c.refreshing[domain] = true
	c.bg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.bg.Done()
		c.flight.Do(domain, func() (any, error) { return c.fetch(c.ctx, domain, id), nil })
		c.mu.Lock()
		delete(c.refreshing, domain)
		c.mu.Unlock()
	}()
}

// Close cancels the background refreshes and waits for them to end.
// Lookup still works after Close, without background refreshes.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.bg.Wait()
}

// fetch fetches and stores the policy of domain published under id; nil
// when it failed.
func (c *Cache) fetch(ctx context.Context, domain, id string) *entry {
	p, err := c.opts.Fetcher.Fetch(ctx, domain)
	now := c.opts.Now()
	if err != nil && c.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // a background refresh cut short by Close: not a failure
	}
	if err != nil {
		res := FetchError
		if errors.Is(err, ErrBadPolicy) {
			res = FetchInvalid
		}
		if c.opts.OnFetch != nil {
			c.opts.OnFetch(domain, res, err)
		}
		c.mu.Lock()
		c.failed[domain] = now
		c.failure[domain] = fetchFailure{result: res, err: err}
		if len(c.failed) > maxFailed {
			// Forget failures old enough not to matter any more.
			for d, t := range c.failed {
				if now.Sub(t) >= c.opts.RetryAfterFailure {
					delete(c.failed, d)
					delete(c.failure, d)
				}
			}
		}
		c.mu.Unlock()
		return nil
	}
	if c.opts.OnFetch != nil {
		c.opts.OnFetch(domain, FetchOK, nil)
	}
	e := &entry{ID: id, Mode: p.Mode.String(), MX: p.MX, MaxAge: p.MaxAge,
		Fetched: now, Expires: now.Add(p.MaxAgeDuration()), policy: p}
	c.mu.Lock()
	delete(c.failed, domain)
	delete(c.failure, domain)
	c.entries[domain] = e
	c.mu.Unlock()
	if err := c.save(); err != nil && c.opts.OnSaveError != nil {
		c.opts.OnSaveError(err)
	}
	return e
}

// save writes the cache file atomically: a temporary file, fsync, rename
// over the old one, fsync of the directory.
func (c *Cache) save() error {
	if c.opts.Dir == "" {
		return nil
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	f := cacheFile{Version: 1, Policies: map[string]*entry{}}
	now := c.opts.Now()
	c.mu.Lock()
	for d, e := range c.entries {
		if now.Before(e.Expires) {
			f.Policies[d] = e
		} else {
			delete(c.entries, d) // expired: of no use any more (§5.1)
		}
	}
	b, err := json.MarshalIndent(&f, "", " ")
	c.mu.Unlock()
	if err != nil {
		return err
	}
	path := filepath.Join(c.opts.Dir, CacheFile)
	tmp, err := os.CreateTemp(c.opts.Dir, CacheFile+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(c.opts.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
