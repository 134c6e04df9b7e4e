package cluster

import (
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// acquireScript takes a connection lease: KEYS[1] is a sorted set of
// leases scored by their expiry (ms of the server's clock), ARGV[1] the
// lease's id, ARGV[2] the most leases at once, ARGV[3] their lifetime
// (ms). Expired leases are dropped first. It returns 1 when taken, else 0.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
return 1
`)

// renewScript extends (or, after Redis lost them, restores) the leases
// ARGV[2…] of KEYS[1] by ARGV[1] ms from the server's clock.
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
return #ARGV - 1
`)

// ConnLimiter is a connection count shared by the cluster: a connection
// holds a lease, renewed by the node's heartbeat until released; the
// leases of a node that died expire after the node TTL.
type ConnLimiter struct {
	c   *Cluster
	key string
	max int

	mu      sync.Mutex
	seq     int
	held    map[string]bool // lease ids this node holds
	local   bool            // Redis unreachable: the local share applies
	probeAt time.Time
}

// ConnLimiter returns the limiter of name (a key under the prefix)
// allowing at most max connections across the cluster. Its leases are
// renewed at each heartbeat.
func (c *Cluster) ConnLimiter(name string, max int) *ConnLimiter {
	l := &ConnLimiter{c: c, key: c.key("conns:" + name), max: max, held: map[string]bool{}}
	c.mu.Lock()
	c.conns = append(c.conns, l)
	c.mu.Unlock()
	return l
}

// Acquire takes a lease: its id (for Release) and true, or false when the
// cluster (or, Redis being unreachable, this node's 1/N share) has max
// connections already. For a heartbeat after Redis answers again the share
// still applies, until every node has put back the leases it took on its
// share (Cluster.settling): a Redis that restarted empty would otherwise
// grant the whole limit again on top of them.
func (l *ConnLimiter) Acquire() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	id := l.c.opts.NodeID + "/" + strconv.Itoa(l.seq)
	now := l.c.opts.Now()
	if l.local && !now.Before(l.probeAt) {
		// Try Redis by putting this node's leases back, not by taking one.
		if l.renewWith(l.renewArgsLocked()) == nil {
			l.local = false
		} else {
			l.probeAt = now.Add(probeInterval)
		}
	}
	if !l.local && !l.c.settling(now) {
		ctx, cancel := l.c.ctx()
		ok, err := acquireScript.Run(ctx, l.c.rdb, []string{l.key}, id, l.max, l.c.opts.NodeTTL.Milliseconds()).Int()
		cancel()
		if l.c.result(err) == nil {
			if ok != 1 {
				return "", false
			}
			l.held[id] = true
			return id, true
		}
		l.local = true
		l.probeAt = now.Add(probeInterval)
	}
	if len(l.held) >= max(1, l.max/l.c.Live()) {
		return "", false
	}
	l.held[id] = true // the next renewal tells Redis
	return id, true
}

// Release gives a lease back.
func (l *ConnLimiter) Release(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[id] {
		return
	}
	delete(l.held, id)
	if l.local {
		return // it expires by itself
	}
	ctx, cancel := l.c.ctx()
	defer cancel()
	l.c.result(l.c.rdb.ZRem(ctx, l.key, id).Err())
}

// renew extends the leases this node holds.
func (l *ConnLimiter) renew() {
	l.mu.Lock()
	args := l.renewArgsLocked()
	l.mu.Unlock()
	if len(args) == 1 {
		return
	}
	l.renewWith(args)
}

// renewArgsLocked is renewScript's arguments for the leases this node
// holds (under l.mu).
func (l *ConnLimiter) renewArgsLocked() []any {
	args := []any{l.c.opts.NodeTTL.Milliseconds()}
	for id := range l.held {
		args = append(args, id)
	}
	return args
}

// renewWith runs renewScript with args (renewArgsLocked).
func (l *ConnLimiter) renewWith(args []any) error {
	ctx, cancel := l.c.ctx()
	defer cancel()
	return l.c.result(renewScript.Run(ctx, l.c.rdb, []string{l.key}, args...).Err())
}
