package sink

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Persona makes the sink play one mailbox provider on one listen address:
// hidden limits it does not advertise, the replies it pushes back with when
// they are exceeded, and the other ways providers defer or refuse mail. A
// "breach" is each time it pushes back because of a hidden limit (the rate
// or the connection limit); deferral bursts, greylisting and unknown users
// are not breaches, as a careful sender meets them too.
type Persona struct {
	// Name labels the persona's counters.
	Name string `toml:"name"`
	// Listen is the address the persona plays on; it is added to
	// Config.Listen when it is not there already.
	Listen string `toml:"listen"`
	// Rate is the hidden message rate per second (a token bucket of
	// RateBurst tokens, refilled at Rate); 0: none.
	Rate float64 `toml:"rate"`
	// RateBurst is the bucket's size; 0: Rate (at least 1).
	RateBurst float64 `toml:"rate_burst"`
	// RateStage is where a transaction takes its token and is refused
	// when there is none: "mail" (the default), "rcpt" (at the first
	// recipient) or "dot" (after the data, as some providers do).
	RateStage string `toml:"rate_stage"`
	// RateReply is the reply past the rate, "CODE TEXT"; a 421 also
	// closes the connection (RFC 5321 §3.8). Default
	// "421 4.7.28 Rate limited, try again later".
	RateReply string `toml:"rate_reply"`
	// MaxConns is the hidden limit of concurrent connections; past it the
	// greeting is ConnReply and the connection closes. 0: none.
	MaxConns int `toml:"max_conns"`
	// ConnReply is the refusing greeting (a 421, RFC 5321 §3.1). Default
	// "421 4.7.0 Too many connections, try again later".
	ConnReply string `toml:"conn_reply"`
	// DeferEvery and DeferFor make deferral bursts: every DeferEvery since
	// the sink started, for DeferFor, MAIL gets DeferReply, whoever sends
	// (default "421 4.7.0 Temporary system problem, try again later").
	DeferEvery Duration `toml:"defer_every"`
	DeferFor   Duration `toml:"defer_for"`
	DeferReply string   `toml:"defer_reply"`
	// Greylist defers a (client IP, sender, recipient) triple seen for the
	// first time with GreylistReply at RCPT (default "451 4.7.1
	// Greylisted, try again later"), and accepts it once Greylist has
	// passed since then. 0: no greylisting.
	Greylist      Duration `toml:"greylist"`
	GreylistReply string   `toml:"greylist_reply"`
	// UnknownUsers is the share of recipients that do not exist: RCPT gets
	// "550 5.1.1 …" (RFC 3463 §3.2 "bad destination mailbox address").
	// Which ones is decided by a hash of the address, so a retry gets the
	// same answer.
	UnknownUsers float64 `toml:"unknown_users"`
	// Domains are the mail domains whose MX is this persona (for a DNS
	// zone built from the personas; the sink itself does not look at them).
	Domains []string `toml:"domains"`
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("bad duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// PersonaFile is the TOML form of a persona set: [[persona]] tables.
type PersonaFile struct {
	Personas []Persona `toml:"persona"`
}

// LoadPersonas reads and checks a persona file.
func LoadPersonas(path string) ([]Persona, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f PersonaFile
	if err := toml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range f.Personas {
		if err := f.Personas[i].check(); err != nil {
			return nil, fmt.Errorf("%s: persona %d: %w", path, i+1, err)
		}
	}
	return f.Personas, nil
}

// check validates a persona and fills in its defaults.
func (p *Persona) check() error {
	if p.Listen == "" {
		return fmt.Errorf("no listen address")
	}
	if p.Name == "" {
		p.Name = p.Listen
	}
	if p.Rate < 0 || p.RateBurst < 0 || p.MaxConns < 0 {
		return fmt.Errorf("%s: rate, rate_burst and max_conns must not be negative", p.Name)
	}
	if p.UnknownUsers < 0 || p.UnknownUsers > 1 {
		return fmt.Errorf("%s: unknown_users must be a share, 0..1", p.Name)
	}
	if (p.DeferEvery > 0) != (p.DeferFor > 0) || p.DeferFor > p.DeferEvery {
		return fmt.Errorf("%s: defer_every and defer_for go together, defer_for shorter", p.Name)
	}
	switch p.RateStage {
	case "":
		p.RateStage = "mail"
	case "mail", "rcpt", "dot":
	default:
		return fmt.Errorf("%s: rate_stage %q: want mail, rcpt or dot", p.Name, p.RateStage)
	}
	defaults := []struct {
		reply *string
		def   string
	}{
		{&p.RateReply, "421 4.7.28 Rate limited, try again later"},
		{&p.ConnReply, "421 4.7.0 Too many connections, try again later"},
		{&p.DeferReply, "421 4.7.0 Temporary system problem, try again later"},
		{&p.GreylistReply, "451 4.7.1 Greylisted, try again later"},
	}
	for _, d := range defaults {
		if *d.reply == "" {
			*d.reply = d.def
		}
		if _, _, err := splitReply(*d.reply); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	if c, _, _ := splitReply(p.ConnReply); c != 421 {
		return fmt.Errorf("%s: conn_reply must be a 421 (the greeting refuses the connection)", p.Name)
	}
	return nil
}

// splitReply splits "CODE TEXT" (a 4xx or 5xx code).
func splitReply(r string) (int, string, error) {
	c, text, _ := strings.Cut(r, " ")
	code, err := strconv.Atoi(c)
	if err != nil || code < 400 || code > 599 {
		return 0, "", fmt.Errorf("reply %q: want \"CODE TEXT\" with a 4xx or 5xx code", r)
	}
	return code, strings.TrimSpace(text), nil
}

// PersonaStats are one persona's counters.
type PersonaStats struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Accepted uint64 `json:"accepted"` // messages accepted
	// Deferred counts the persona's pushbacks by reason: "rate" and
	// "conns" (the breaches), "burst", "greylist".
	Deferred map[string]uint64 `json:"deferred"`
	Unknown  uint64            `json:"unknown"`  // recipients refused 550 5.1.1
	Breaches uint64            `json:"breaches"` // rate + conns
	MaxConns int64             `json:"max_concurrent_connections"`
}

// The reasons of Deferred.
const (
	deferRate = iota
	deferConns
	deferBurst
	deferGreylist
	numDeferReasons
)

var deferNames = [numDeferReasons]string{"rate", "conns", "burst", "greylist"}

// personaState is a persona at work: its limits' state and its counters.
type personaState struct {
	p           Persona
	start       time.Time
	rateCode    int
	rateText    string
	deferCode   int
	deferText   string
	greyCode    int
	greyText    string
	conns       atomic.Int64
	maxConns    atomic.Int64
	accepted    atomic.Uint64
	unknown     atomic.Uint64
	deferred    [numDeferReasons]atomic.Uint64
	mu          sync.Mutex
	tokens      float64
	last        time.Time
	firstSeen   map[string]time.Time // greylisting: triple → first attempt
	greyCleaned time.Time
}

func newPersonaState(p Persona, start time.Time) *personaState {
	ps := &personaState{p: p, start: start, last: start, firstSeen: map[string]time.Time{}}
	ps.rateCode, ps.rateText, _ = splitReply(p.RateReply)
	ps.deferCode, ps.deferText, _ = splitReply(p.DeferReply)
	ps.greyCode, ps.greyText, _ = splitReply(p.GreylistReply)
	ps.tokens = ps.burst()
	return ps
}

func (ps *personaState) burst() float64 {
	if ps.p.RateBurst > 0 {
		return ps.p.RateBurst
	}
	return max(1, ps.p.Rate)
}

// takeToken reports whether the hidden rate lets one more message through
// at now, and takes its token when it does (a token bucket).
func (ps *personaState) takeToken(now time.Time) bool {
	if ps.p.Rate <= 0 {
		return true
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if dt := now.Sub(ps.last).Seconds(); dt > 0 {
		ps.tokens = min(ps.burst(), ps.tokens+dt*ps.p.Rate)
		ps.last = now
	}
	if ps.tokens < 1 {
		return false
	}
	ps.tokens--
	return true
}

// inBurst reports whether now falls in a deferral burst: the last DeferFor
// of every DeferEvery since the start (so the first comes after a while).
func (ps *personaState) inBurst(now time.Time) bool {
	every := time.Duration(ps.p.DeferEvery)
	if every <= 0 {
		return false
	}
	pos := now.Sub(ps.start) % every
	return pos >= every-time.Duration(ps.p.DeferFor)
}

// greylisted reports whether the triple is still greylisted at now; its
// first attempt starts the wait.
func (ps *personaState) greylisted(ip, from string, rcpt []byte, now time.Time) bool {
	g := time.Duration(ps.p.Greylist)
	if g <= 0 {
		return false
	}
	key := ip + "\x00" + from + "\x00" + string(rcpt)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	first, ok := ps.firstSeen[key]
	if !ok {
		ps.firstSeen[key] = now
		return true
	}
	if now.Sub(first) < g {
		return true
	}
	// Passed: the triple stays accepted (a retry after a later deferral is
	// not greylisted again) until it is forgotten with the stale entries,
	// 10 waits after its first attempt, so a long run keeps the map small.
	if now.Sub(ps.greyCleaned) > g {
		for k, t := range ps.firstSeen {
			if now.Sub(t) > 10*g {
				delete(ps.firstSeen, k)
			}
		}
		ps.greyCleaned = now
	}
	return false
}

// unknownUser reports whether addr is one of the persona's unknown users:
// the 64-bit FNV-1a hash of the address (ASCII case folded), as a share of
// 2^64, below UnknownUsers. The same address always gets the same answer.
func (ps *personaState) unknownUser(addr []byte) bool {
	if ps.p.UnknownUsers <= 0 {
		return false
	}
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for _, c := range addr {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= prime64
	}
	return float64(h) < ps.p.UnknownUsers*math.MaxUint64
}

// connOpened counts a connection; false (and a breach) past MaxConns.
func (ps *personaState) connOpened() bool {
	n := ps.conns.Add(1)
	if ps.p.MaxConns > 0 && n > int64(ps.p.MaxConns) {
		ps.conns.Add(-1)
		ps.deferred[deferConns].Add(1)
		return false
	}
	for {
		m := ps.maxConns.Load()
		if n <= m || ps.maxConns.CompareAndSwap(m, n) {
			return true
		}
	}
}

func (ps *personaState) stats() PersonaStats {
	st := PersonaStats{
		Name:     ps.p.Name,
		Listen:   ps.p.Listen,
		Accepted: ps.accepted.Load(),
		Unknown:  ps.unknown.Load(),
		Deferred: map[string]uint64{},
		MaxConns: ps.maxConns.Load(),
	}
	for i, n := range deferNames {
		st.Deferred[n] = ps.deferred[i].Load()
	}
	st.Breaches = st.Deferred["rate"] + st.Deferred["conns"]
	return st
}

// personaReply answers a pushback of the persona for reason (counted) and
// reports whether the session must end (a 421, RFC 5321 §3.8).
func (ss *session) personaReply(reason, code int, text string) error {
	ss.persona.deferred[reason].Add(1)
	ss.reply(code, text)
	if code == 421 {
		return errClose
	}
	return nil
}

// personaRate applies the hidden rate at stage ("mail", "rcpt", "dot"):
// handled reports that it refused the transaction.
func (ss *session) personaRate(stage string) (handled bool, err error) {
	ps := ss.persona
	if ps == nil || ps.p.RateStage != stage || ss.tokenTaken {
		return false, nil
	}
	if ps.takeToken(ss.s.now()) {
		ss.tokenTaken = true
		return false, nil
	}
	return true, ss.personaReply(deferRate, ps.rateCode, ps.rateText)
}

// personaMail applies a persona's deferral burst and its rate at MAIL.
func (ss *session) personaMail() (handled bool, err error) {
	ps := ss.persona
	if ps == nil {
		return false, nil
	}
	if ps.inBurst(ss.s.now()) {
		return true, ss.personaReply(deferBurst, ps.deferCode, ps.deferText)
	}
	return ss.personaRate("mail")
}

// personaRcpt applies a persona's unknown users, greylisting and (once a
// transaction) its rate at RCPT.
func (ss *session) personaRcpt(addr []byte) (handled bool, err error) {
	ps := ss.persona
	if ps == nil {
		return false, nil
	}
	if ps.unknownUser(addr) {
		ps.unknown.Add(1)
		ss.reply(550, "5.1.1 <"+string(addr)+">: no such user")
		return true, nil
	}
	if ps.greylisted(ss.ip, ss.personaFrom, addr, ss.s.now()) {
		return true, ss.personaReply(deferGreylist, ps.greyCode, ps.greyText)
	}
	return ss.personaRate("rcpt")
}
