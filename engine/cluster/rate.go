package cluster

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript grants ARGV[3] tokens of the limit KEYS[1] at once, or none:
// a GCRA whose theoretical arrival time (TAT, microseconds of the server's
// clock) is the key's value. ARGV[1] is the emission interval T (µs per
// token), ARGV[2] the burst tolerance tau (µs, at least (n-1)·T). It
// returns {granted, wait}: wait is how long (µs) until the tokens asked
// for are there, when none was granted. The same rule as gcra, below.
// All or nothing: a partial batch would mean more calls for the same
// tokens when the limit is busy.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat + (n - 1) * T > now + tau then
  return {0, math.ceil(tat + (n - 1) * T - tau - now)}
end
tat = tat + n * T
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {n, 0}
`)

// gcra grants n tokens at now (µs), or none, of a limit with emission
// interval T and tolerance tau (µs) whose TAT is *tat: true, or false and
// how long (µs) until n tokens are there.
func gcra(tat *float64, now, T, tau float64, n int) (bool, float64) {
	t := math.Max(*tat, now)
	if wait := t + float64(n-1)*T - tau - now; wait > 0 {
		return false, wait
	}
	*tat = t + float64(n)*T
	return true, 0
}

// RateLimiter is a message rate shared by the cluster: Take hands out
// tokens leased from Redis a batch at a time.
type RateLimiter struct {
	c     *Cluster
	key   string
	rate  float64 // tokens per second, cluster-wide
	batch int     // tokens leased per Redis call

	// RoundTrips counts the Redis calls made for grants.
	RoundTrips atomic.Int64

	mu      sync.Mutex
	tokens  int       // leased, not yet spent
	spendBy time.Time // the leased tokens lapse after this
	wait    time.Time // Redis said no token before this
	local   bool      // Redis unreachable: the local share applies
	probeAt time.Time // when local, try Redis again from this time
	tat     float64   // the local share's GCRA (µs since the Unix epoch)
}

// RateLimiter returns the limiter of name (a key under the prefix) at rate
// tokens per second across the cluster (0 or less: unlimited). Each Redis
// call leases batch tokens (at least 1), to be spent within two batch
// times, and the limit lets a burst of two batches through when it was
// idle.
func (c *Cluster) RateLimiter(name string, rate float64, batch int) *RateLimiter {
	return &RateLimiter{c: c, key: c.key("rate:" + name), rate: rate, batch: max(1, batch)}
}

// Local reports whether the limiter runs on its local share (Redis was
// unreachable at its last call).
func (l *RateLimiter) Local() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.local
}

// Take spends one token: true, or false and how long until one may be
// there. It never waits on Redis longer than the cluster's timeout.
func (l *RateLimiter) Take() (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.c.opts.Now()
	if l.tokens > 0 && now.Before(l.spendBy) {
		l.tokens--
		return true, 0
	}
	l.tokens = 0 // a lease kept too long would be a burst past the limit
	if l.local && now.Before(l.probeAt) {
		return l.takeLocal(now)
	}
	if !l.local && now.Before(l.wait) {
		return false, l.wait.Sub(now)
	}
	k, wait, err := l.lease()
	if err != nil {
		if !l.local {
			l.local = true
			l.tat = 0
		}
		l.probeAt = now.Add(probeInterval)
		return l.takeLocal(now)
	}
	l.local = false
	if k == 0 {
		// The other nodes that wait for the same batch would all come
		// back at once, and all but one be refused again: spread them
		// over the time two batches take (the limit's room: longer, and
		// it would fill while every node waits).
		if l.c.Live() > 1 {
			wait += rand.N(2*l.batchTime() + 1)
		}
		l.wait = now.Add(wait)
		return false, wait
	}
	l.tokens = k - 1
	l.spendBy = now.Add(2 * l.batchTime())
	return true, 0
}

// batchTime is how long a batch lasts at the limit.
func (l *RateLimiter) batchTime() time.Duration {
	return time.Duration(float64(l.batch) / l.rate * float64(time.Second))
}

// lease asks Redis for a batch of tokens.
func (l *RateLimiter) lease() (int, time.Duration, error) {
	T := 1e6 / l.rate
	tau := float64(2*l.batch-1) * T // room for two batches: a batch not taken at once is not lost
	ctx, cancel := l.c.ctx()
	defer cancel()
	l.RoundTrips.Add(1)
	r, err := gcraScript.Run(ctx, l.c.rdb, []string{l.key}, T, tau, l.batch).Int64Slice()
	if l.c.result(err) != nil {
		return 0, 0, err
	}
	if len(r) != 2 {
		return 0, 0, redis.Nil
	}
	return int(r[0]), time.Duration(max(r[1], 1)) * time.Microsecond, nil
}

// takeLocal spends a token of this node's share: 1/N of the rate, N the
// live nodes last counted. Its tolerance is 1/N of the batch, and at least
// one token: without one, a caller that comes back a little after the
// wait it was told would lose that lateness at every token (measured in
// e2e TestE2EClusterFleet: 50/s over 3 nodes, batch 5, gave 87% of the
// share), and allowing two at once after a pause does not raise the rate.
func (l *RateLimiter) takeLocal(now time.Time) (bool, time.Duration) {
	n := float64(l.c.Live())
	T := 1e6 * n / l.rate
	batch := max(2, int(float64(l.batch)/n))
	us := float64(now.UnixMicro())
	if ok, wait := gcra(&l.tat, us, T, float64(batch-1)*T, 1); !ok {
		return false, time.Duration(wait) * time.Microsecond
	}
	return true, 0
}
