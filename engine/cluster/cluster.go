package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stats is what a node reports of itself in its heartbeat (the engine's
// queue and metrics).
type Stats interface {
	// QueueDepth is the number of messages queued.
	QueueDepth() int
	// Messages are the messages received and delivered since the start
	// (monotonic counts; the heartbeat turns them into rates).
	Messages() (in, out uint64)
}

// Options configure a node's view of the cluster.
type Options struct {
	URL       string        // redis://HOST:PORT/DB (go-redis ParseURL forms)
	NodeID    string        // this node's name; required
	KeyPrefix string        // prefix of every key ("gannet:")
	Heartbeat time.Duration // how often the node renews its entry and counts the nodes
	NodeTTL   time.Duration // an entry (and a connection lease) not renewed for this long is gone
	Timeout   time.Duration // bound of every Redis call
	Stats     Stats         // nil: the node reports zeros
	// OnRedisError is called for every Redis call that failed or timed
	// out (gannet_cluster_redis_errors_total); nil: not counted.
	OnRedisError func()
	// OnRedisCall is called for every round trip to Redis, failed or not,
	// with what it was for: OpRate, OpConn, OpRules, OpHeartbeat or
	// OpOther (calls.go; gannet_cluster_redis_calls_total); nil: not
	// counted.
	OnRedisCall func(op string)
	Logger      *slog.Logger     // nil: discarded
	Now         func() time.Time // nil: time.Now
}

// Node is one node's entry as its last heartbeat wrote it.
type Node struct {
	ID         string    `json:"id"`
	Admin      string    `json:"admin,omitempty"` // "host:port" of its admin API; "": none
	SMTP       string    `json:"smtp,omitempty"`  // "host:port" of its first SMTP listener (gannet xfer's target); "": none
	Started    time.Time `json:"started"`
	LastBeat   time.Time `json:"last_beat"`
	QueueDepth int       `json:"queue_depth"`
	InPerSec   float64   `json:"messages_in_per_second"`
	OutPerSec  float64   `json:"messages_out_per_second"`
}

// probeInterval is how often a limiter that fell back to its local share
// tries Redis again.
const probeInterval = time.Second

// Cluster is a node's connection to the cluster's Redis.
type Cluster struct {
	opts Options
	rdb  *redis.Client
	log  *slog.Logger

	live atomic.Int64 // live nodes at the last count (at least 1)
	down atomic.Bool  // the last Redis call failed (logged once per change)
	upAt atomic.Int64 // when Redis answered again after failing (Unix ns; 0: never failed)

	mu    sync.Mutex
	self  Node           // this node's entry (under mu)
	conns []*ConnLimiter // limiters whose leases each beat renews
	rules *Rules         // the shared admin rules (rules.go); nil until asked for
	supp  *Suppressions  // the shared suppression list (suppress.go); nil until asked for
	last  struct {
		at      time.Time
		in, out uint64
	}
	stop chan struct{}
	done chan struct{}
}

// New prepares the connection to Redis; nothing is sent before Start.
func New(opts Options) (*Cluster, error) {
	if opts.NodeID == "" {
		return nil, errors.New("cluster: a node id is required")
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster: the Redis URL: %w", err) // not shown: it may hold a password
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 250 * time.Millisecond
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 5 * time.Second
	}
	if opts.NodeTTL <= opts.Heartbeat {
		opts.NodeTTL = 3 * opts.Heartbeat
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Fail fast: one try per call, every wait bounded by the timeout.
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = opts.Timeout, opts.Timeout, opts.Timeout, opts.Timeout
	ro.MaxRetries = -1
	ro.ContextTimeoutEnabled = true
	c := &Cluster{opts: opts, rdb: redis.NewClient(ro), log: opts.Logger}
	if opts.OnRedisCall != nil {
		c.rdb.AddHook(callCounter{prefix: opts.KeyPrefix, on: opts.OnRedisCall})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.live.Store(1)
	return c, nil
}

// NodeID is this node's id.
func (c *Cluster) NodeID() string { return c.opts.NodeID }

// Live is the number of live nodes at the last count (at least 1, this one).
func (c *Cluster) Live() int { return int(c.live.Load()) }

// Start registers the node (admin: the address of its admin API; smtp:
// that of its first SMTP listener; "" for none) and starts its
// heartbeat. Redis need not be up: the node keeps trying at every beat.
func (c *Cluster) Start(admin, smtp string) {
	now := c.opts.Now()
	c.mu.Lock()
	c.self = Node{ID: c.opts.NodeID, Admin: admin, SMTP: smtp, Started: now.UTC()}
	c.last.at = now
	if c.opts.Stats != nil {
		c.last.in, c.last.out = c.opts.Stats.Messages()
	}
	stop, done := make(chan struct{}), make(chan struct{})
	c.stop, c.done = stop, done
	c.mu.Unlock()
	c.beat()
	go c.loop(stop, done)
}

// Stop ends the heartbeat, removes the node's entry (the others see it
// gone at once) and closes the connection.
func (c *Cluster) Stop() {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop = nil
	rules, supp := c.rules, c.supp
	c.mu.Unlock()
	if rules != nil {
		rules.x.halt()
	}
	if supp != nil {
		supp.x.halt()
	}
	if stop != nil {
		close(stop)
		<-done
		ctx, cancel := c.ctx()
		pipe := c.rdb.TxPipeline()
		pipe.Del(ctx, c.nodeKey(c.opts.NodeID))
		pipe.SRem(ctx, c.key("nodes"), c.opts.NodeID)
		_, err := pipe.Exec(ctx)
		cancel()
		c.result(err)
	}
	c.rdb.Close()
}

func (c *Cluster) loop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(c.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.beat()
		}
	}
}

func (c *Cluster) key(name string) string   { return c.opts.KeyPrefix + name }
func (c *Cluster) nodeKey(id string) string { return c.key("node:" + id) }
func (c *Cluster) ctx() (context.Context, func()) {
	return context.WithTimeout(context.Background(), c.opts.Timeout)
}

// result notes how a Redis call went: a failure is counted, and the
// first failure after success (and the first success after failures) is
// logged. It returns err.
func (c *Cluster) result(err error) error {
	if err != nil && !errors.Is(err, redis.Nil) {
		if c.opts.OnRedisError != nil {
			c.opts.OnRedisError()
		}
		if !c.down.Swap(true) {
			c.log.Warn("cluster: Redis unreachable; limits fall back to this node's share",
				"err", err, "live_nodes", c.Live())
		}
		return err
	}
	if c.down.Swap(false) {
		c.upAt.Store(c.opts.Now().UnixNano())
		c.log.Info("cluster: Redis answers again; cluster-wide limits restored")
	}
	return nil
}

// settling reports whether Redis answered again, after failing, less than
// a heartbeat (and a call's timeout) before now: the connection leases the
// nodes took on their shares meanwhile may not all be back in it yet (a
// Redis that restarted has none), as each node's heartbeat puts its own
// back.
func (c *Cluster) settling(now time.Time) bool {
	up := c.upAt.Load()
	return up != 0 && now.Before(time.Unix(0, up).Add(c.opts.Heartbeat+c.opts.Timeout))
}

// beat renews this node's entry and its connection leases, and counts the
// live nodes.
func (c *Cluster) beat() {
	now := c.opts.Now()
	c.mu.Lock()
	self := c.self
	if s := c.opts.Stats; s != nil {
		self.QueueDepth = s.QueueDepth()
		in, out := s.Messages()
		if secs := now.Sub(c.last.at).Seconds(); secs > 0 {
			self.InPerSec = float64(in-c.last.in) / secs
			self.OutPerSec = float64(out-c.last.out) / secs
		}
		c.last.at, c.last.in, c.last.out = now, in, out
	}
	self.LastBeat = now.UTC()
	c.self = self
	conns := append([]*ConnLimiter(nil), c.conns...)
	c.mu.Unlock()

	b, _ := json.Marshal(self)
	ctx, cancel := c.ctx()
	pipe := c.rdb.TxPipeline()
	pipe.Set(ctx, c.nodeKey(self.ID), b, c.opts.NodeTTL)
	pipe.SAdd(ctx, c.key("nodes"), self.ID)
	_, err := pipe.Exec(ctx)
	cancel()
	if c.result(err) != nil {
		return
	}
	if nodes, err := c.Nodes(context.Background()); err == nil {
		n := int64(max(1, len(nodes)))
		if c.settling(now) {
			// The nodes register again after Redis came back (empty,
			// perhaps): a lower count is not believed yet.
			n = max(n, c.live.Load())
		}
		c.live.Store(n)
	}
	for _, l := range conns {
		l.renew()
	}
}

// Nodes returns the live nodes, by id.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	ids, err := c.rdb.SMembers(ctx, c.key("nodes")).Result()
	if c.result(err) != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []Node{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.nodeKey(id)
	}
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if c.result(err) != nil {
		return nil, err
	}
	nodes := make([]Node, 0, len(ids))
	var gone []any
	for i, v := range vals {
		s, ok := v.(string)
		var n Node
		if !ok || json.Unmarshal([]byte(s), &n) != nil {
			gone = append(gone, ids[i]) // its entry expired: the node is gone
			continue
		}
		nodes = append(nodes, n)
	}
	if len(gone) > 0 {
		c.result(c.rdb.SRem(ctx, c.key("nodes"), gone...).Err())
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes, nil
}

// quiet drops the client library's own log lines (a failed dial, every
// time, while Redis is down): the cluster logs the changes itself, once.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quiet{}) }
