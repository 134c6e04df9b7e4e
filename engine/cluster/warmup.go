package cluster

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// warmupScript adds ARGV[3] to the field ARGV[2] (a provider) of the hash
// KEYS[2] (a warming source's counts of one day, kept two days), and keeps
// in KEYS[1] the source's start date, "YYYY-MM-DD": ARGV[1] when there is
// none or ARGV[1] is earlier ("" offers none). It returns {start, count}.
var warmupScript = redis.NewScript(`
local start = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and ((not start) or ARGV[1] < start) then
  redis.call('SET', KEYS[1], ARGV[1])
  start = ARGV[1]
end
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], 172800)
return {start or '', n}
`)

// dateLayout is the form of a warm-up day in the keys and of a start date.
const dateLayout = "2006-01-02"

// Warmup is the IP warm-up state the nodes share (engine/warmup's
// Shared): each warming source's start date (PREFIXwarmup:SOURCE:start)
// and its counts of a day by provider (the hash
// PREFIXwarmup:SOURCE:YYYY-MM-DD, kept two days).
type Warmup struct{ c *Cluster }

// Warmup returns the node's view of the shared warm-up state.
func (c *Cluster) Warmup() *Warmup { return &Warmup{c: c} }

// Add adds n to the count of source's messages to provider on day and
// offers start as its start date (zero: none); it returns the count after
// the addition and the cluster's start date (zero: none).
func (w *Warmup) Add(source, provider string, day, start time.Time, n int) (int, time.Time, error) {
	c := w.c
	offer := ""
	if !start.IsZero() {
		offer = start.UTC().Format(dateLayout)
	}
	keys := []string{c.key("warmup:" + source + ":start"), c.key("warmup:" + source + ":" + day.UTC().Format(dateLayout))}
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := warmupScript.Run(ctx, c.rdb, keys, offer, provider, n).Slice()
	if c.result(err) != nil {
		return 0, time.Time{}, err
	}
	if len(r) != 2 {
		return 0, time.Time{}, redis.Nil
	}
	count, _ := r[1].(int64)
	s, _ := r[0].(string)
	var clusterStart time.Time
	if s != "" {
		clusterStart, _ = time.Parse(dateLayout, s)
	}
	return int(count), clusterStart, nil
}

// Live is the number of live nodes at the last count (at least 1).
func (w *Warmup) Live() int { return w.c.Live() }
