package cluster

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// What a round trip to Redis was for (Options.OnRedisCall; the label op of
// gannet_cluster_redis_calls_total).
const (
	OpRate      = "rate"      // a lease of tokens of a shared rate (RateLimiter)
	OpConn      = "conn"      // a connection lease taken, renewed or given back (ConnLimiter)
	OpRules     = "rules"     // the shared admin rules written or read (Rules)
	OpSuppress  = "suppress"  // the shared suppression list written or read (suppress.go)
	OpHeartbeat = "heartbeat" // the node entries: a heartbeat, the live nodes counted or listed
	OpOther     = "other"     // anything else: the commands that set up a new connection (HELLO, SELECT, CLIENT)
)

// callCounter is a go-redis hook that tells Options.OnRedisCall of every
// command and every pipeline (one round trip each, sent or not: a call to
// a Redis that is down counts too), classified by the first key it names.
// The subscription's own traffic (rules.go's reader) is not counted.
type callCounter struct {
	prefix string
	on     func(op string)
}

func (h callCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h callCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.on(h.op(cmd))
		return next(ctx, cmd)
	}
}

func (h callCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		op := OpOther
		for _, cmd := range cmds {
			if !strings.EqualFold(cmd.Name(), "multi") { // a transaction's MULTI names no key
				op = h.op(cmd)
				break
			}
		}
		h.on(op)
		return next(ctx, cmds)
	}
}

// op classifies a command by its first key (the script's first key for
// EVAL and EVALSHA), as named by Cluster.key.
func (h callCounter) op(cmd redis.Cmder) string {
	args := cmd.Args()
	i := 1
	switch strings.ToLower(cmd.Name()) {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		i = 3 // EVALSHA sha numkeys key…
	}
	if len(args) <= i {
		return OpOther
	}
	key, ok := args[i].(string)
	if !ok || !strings.HasPrefix(key, h.prefix) {
		return OpOther
	}
	name := key[len(h.prefix):]
	switch {
	case strings.HasPrefix(name, "rate:"):
		return OpRate
	case strings.HasPrefix(name, "conns:"):
		return OpConn
	case name == "rules":
		return OpRules
	case name == "suppress":
		return OpSuppress
	case name == "nodes" || strings.HasPrefix(name, "node:"):
		return OpHeartbeat
	}
	return OpOther
}

var _ redis.Hook = callCounter{}
