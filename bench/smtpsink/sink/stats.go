package sink

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a sink's counters.
type Stats struct {
	Connections        uint64 `json:"connections"`         // accepted, in total
	CurrentConns       int64  `json:"current_connections"` // open now
	MaxConcurrentConns int64  `json:"max_concurrent_connections"`
	RefusedConns       uint64 `json:"refused_connections"` // over the connection limit
	TLSHandshakes      uint64 `json:"tls_handshakes"`      // successful STARTTLS upgrades
	TLSResumed         uint64 `json:"tls_resumed"`         // of which resumed an earlier session (RFC 8446 §2.2)
	Messages           uint64 `json:"messages"`            // accepted with 2xx at the end of data
	Rejected           uint64 `json:"rejected"`            // refused at the end of data (injected or too big)
	Recipients         uint64 `json:"recipients"`          // recipients of accepted messages
	Bytes              uint64 `json:"bytes"`               // body bytes of accepted messages
	Throttled          uint64 `json:"throttled"`           // MAIL commands refused by the throttle
	Dropped            uint64 `json:"dropped"`             // connections dropped by injection
	// Connections the client ended without QUIT (a read or write error,
	// such as a relay killed with SIGKILL): CutAfterReply counts the
	// messages accepted with a 250 the client may not have read — of the
	// last two transactions of the connection (a pipelining client may have
	// two in flight), unless a later DATA body (or, without PIPELINING, a
	// later command) showed it read them — and CutInData the connections
	// that ended inside DATA or BDAT. Their sum bounds what such a client
	// can send again.
	CutAfterReply uint64 `json:"cut_after_reply"`
	CutInData     uint64 `json:"cut_in_data"`
	// ReplyFlushes counts the times the sink sent its buffered replies
	// because it had read everything the client sent and was about to wait
	// for more (RFC 2920 §3.2): the round trips of the conversations. A
	// client that pipelines the next envelope behind each body (RFC 2920
	// §3.1) costs about one per message; one that waits for the 354, two.
	ReplyFlushes  uint64         `json:"reply_flushes"`
	Replies       map[int]uint64 `json:"replies"` // replies sent, by code
	UptimeSeconds float64        `json:"uptime_seconds"`
	// Personas are the counters of the providers the sink plays.
	Personas []PersonaStats `json:"personas,omitempty"`
}

// String formats s as the one-line summary smtpsink prints.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conns=%d cur=%d max=%d refused=%d msgs=%d rejected=%d rcpts=%d bytes=%d throttled=%d dropped=%d cut=%d+%d",
		s.Connections, s.CurrentConns, s.MaxConcurrentConns, s.RefusedConns, s.Messages, s.Rejected,
		s.Recipients, s.Bytes, s.Throttled, s.Dropped, s.CutAfterReply, s.CutInData)
	codes := make([]int, 0, len(s.Replies))
	for c := range s.Replies {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	b.WriteString(" replies=")
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(s.Replies[c], 10))
	}
	if len(codes) == 0 {
		b.WriteByte('-')
	}
	if len(s.Personas) > 0 {
		var t PersonaStats
		for _, p := range s.Personas {
			t.add(p)
		}
		fmt.Fprintf(&b, " personas=%d %s", len(s.Personas), t.counts())
	}
	return b.String()
}

// counters are the live, lock-free counters behind Stats.
type counters struct {
	connections   atomic.Uint64
	current       atomic.Int64
	maxConcurrent atomic.Int64
	periodMax     atomic.Int64 // the peak since the last TakeMaxConcurrent
	refused       atomic.Uint64
	tls           atomic.Uint64
	tlsResumed    atomic.Uint64
	messages      atomic.Uint64
	rejected      atomic.Uint64
	recipients    atomic.Uint64
	bytes         atomic.Uint64
	throttled     atomic.Uint64
	dropped       atomic.Uint64
	cutAfterReply atomic.Uint64
	cutInData     atomic.Uint64
	flushes       atomic.Uint64
	replies       [600]atomic.Uint64
}

// connOpened counts a new connection and reports whether it is within limit
// (0 = no limit). A connection over the limit is not counted as open.
func (c *counters) connOpened(limit int) bool {
	n := c.current.Add(1)
	if limit > 0 && n > int64(limit) {
		c.current.Add(-1)
		c.refused.Add(1)
		return false
	}
	c.connections.Add(1)
	raise(&c.maxConcurrent, n)
	raise(&c.periodMax, n)
	return true
}

// raise makes *p at least n.
func raise(p *atomic.Int64, n int64) {
	for {
		m := p.Load()
		if n <= m || p.CompareAndSwap(m, n) {
			return
		}
	}
}

func (c *counters) reply(code int) {
	if code >= 0 && code < len(c.replies) {
		c.replies[code].Add(1)
	}
}

func (c *counters) snapshot(uptime time.Duration) Stats {
	s := Stats{
		Connections:        c.connections.Load(),
		CurrentConns:       c.current.Load(),
		MaxConcurrentConns: c.maxConcurrent.Load(),
		RefusedConns:       c.refused.Load(),
		TLSHandshakes:      c.tls.Load(),
		TLSResumed:         c.tlsResumed.Load(),
		Messages:           c.messages.Load(),
		Rejected:           c.rejected.Load(),
		Recipients:         c.recipients.Load(),
		Bytes:              c.bytes.Load(),
		Throttled:          c.throttled.Load(),
		Dropped:            c.dropped.Load(),
		CutAfterReply:      c.cutAfterReply.Load(),
		CutInData:          c.cutInData.Load(),
		ReplyFlushes:       c.flushes.Load(),
		Replies:            map[int]uint64{},
		UptimeSeconds:      uptime.Seconds(),
	}
	for code := range c.replies {
		if n := c.replies[code].Load(); n > 0 {
			s.Replies[code] = n
		}
	}
	return s
}

// add sums o's counters into p.
func (p *PersonaStats) add(o PersonaStats) {
	p.Accepted += o.Accepted
	p.Unknown += o.Unknown
	p.Breaches += o.Breaches
	if p.Deferred == nil {
		p.Deferred = map[string]uint64{}
	}
	for k, v := range o.Deferred {
		p.Deferred[k] += v
	}
}

// counts formats a persona's counters for the summary lines.
func (p PersonaStats) counts() string {
	return fmt.Sprintf("accepted=%d breaches=%d deferred=rate:%d,conns:%d,burst:%d,greylist:%d unknown=%d",
		p.Accepted, p.Breaches, p.Deferred["rate"], p.Deferred["conns"], p.Deferred["burst"], p.Deferred["greylist"], p.Unknown)
}

// PersonaLines formats each persona's counters, one line each, for the
// final summary.
func (s Stats) PersonaLines() []string {
	out := make([]string, 0, len(s.Personas))
	for _, p := range s.Personas {
		out = append(out, fmt.Sprintf("persona %s (%s) %s max_conns=%d", p.Name, p.Listen, p.counts(), p.MaxConns))
	}
	return out
}
