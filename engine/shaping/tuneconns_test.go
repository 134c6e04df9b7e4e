package shaping

import (
	"strings"
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/smtpwire"
)

// hiddenConnSite simulates a site behind a connection limit: past limit
// open connections it answers the greeting with bench/smtpsink's "421
// 4.7.0 Too many connections" (or refuses the TCP connection, refuseTCP).
// Each transaction takes took(n) with n connections open; knee > 0 makes
// every connection past knee slow the site down by 60%.
type hiddenConnSite struct {
	limit     int
	knee      int
	base      time.Duration // a transaction's time under the knee (100ms)
	refuseTCP bool
	sessions  int
	refusals  int
}

func (h *hiddenConnSite) took(n int) time.Duration {
	d := cmpOr(h.base, 100*time.Millisecond)
	if h.knee > 0 && n > h.knee {
		d += time.Duration(float64(d) * 0.6 * float64(n-h.knee))
	}
	return d
}

// answer is the outcome of the i-th of n sessions open at once.
func (h *hiddenConnSite) answer(i, n int) *outbound.Outcome {
	h.sessions++
	if h.limit > 0 && i >= h.limit {
		h.refusals++
		out := outcome(outbound.Transient, 421, "4.7.0", "Too many connections, try again later")
		out.Results[0].Local = true // the session never began: Gannet writes the recipient's reply
		if h.refuseTCP {
			out.Results[0].Reply = smtpwire.Reply{Code: 451, Enhanced: "4.4.1", Lines: []string{"cannot connect: connection refused"}}
			out.ConnRefused = true
		} else {
			out.SessionReply = smtpwire.Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{"Too many connections, try again later"}}
		}
		return out
	}
	out := ok()
	out.Elapsed, out.PoolOpen = h.took(n), n
	return out
}

// simulateConns runs a sender with endless mail to site for d of fake
// time, in rounds of 100ms: each round, as many sessions as the shaper's
// connection limit allows; each is called after every round with the
// limit in force.
func simulateConns(s *Shaper, c *clock, site *hiddenConnSite, d time.Duration, each func(conns int)) {
	const round = 100 * time.Millisecond
	for end := c.t.Add(d); c.t.Before(end); c.advance(round) {
		n := s.Limits(slowPath).Connections
		for i := range n {
			s.Observe(slowPath, site.answer(i, n))
		}
		if each != nil {
			each(n)
		}
	}
}

// connTuning is tuneOn with 5s windows, so that a simulated hour holds
// 720 of them.
var connTuning = Tuning{Enabled: true, TargetDeferral: 0.02, Window: 5 * time.Second, MinAttempts: 20, MinRate: 1}

// TestTuneConnsSettlesUnderHiddenLimit: a site that takes 4 connections
// and refuses the fifth with a 421 greeting, behind a configured
// connection_limit of 20. The search starts at a quarter of the ceiling
// (5), comes down, and over the last 50 of 60 minutes stays at 4, trying 5
// only now and then (at most once every 10 windows), so that under 2.5% of
// the sessions are refused; it never passes the ceiling, and its moves
// are told with their reasons.
func TestTuneConnsSettlesUnderHiddenLimit(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		name := "421 greeting"
		if tcp {
			name = "connection refused"
		}
		t.Run(name, func(t *testing.T) {
			s, c, told := tuneShaper(outbound.Limits{Connections: 20}, connTuning)
			site := &hiddenConnSite{limit: 4, refuseTCP: tcp}
			if n := s.Limits(slowPath).Connections; n != 5 {
				t.Fatalf("starting connection limit %d, want 5 (a quarter of 20)", n)
			}
			simulateConns(s, c, site, 10*time.Minute, nil)
			if len(*told) == 0 || !strings.Contains((*told)[0].ConnsReason, "refused") || (*told)[0].Conns >= 5 {
				t.Fatalf("changes %+v: want a step down on the refusals first, saying so", *told)
			}
			*site = hiddenConnSite{limit: 4, refuseTCP: tcp}
			over, rounds := 0, 0
			simulateConns(s, c, site, 50*time.Minute, func(n int) {
				rounds++
				if n > 5 {
					t.Fatalf("connection limit %d once settled, above the site's 4 by more than one probe", n)
				}
				if n > 4 {
					over++
				}
			})
			if got := float64(over) / float64(rounds); got > 1.0/float64(TuneConnProbeAfter) {
				t.Errorf("above the hidden limit in %.1f%% of the rounds once settled, want at most one window in %d", got*100, TuneConnProbeAfter)
			}
			share := float64(site.refusals) / float64(site.sessions)
			t.Logf("hidden 4 connections: above it in %d of %d rounds, refused %d of %d sessions (%.2f%%)",
				over, rounds, site.refusals, site.sessions, share*100)
			if share >= 0.025 {
				t.Errorf("the site refused %d of %d sessions (%.2f%%) once settled, want under 2.5%%", site.refusals, site.sessions, share*100)
			}
			st := s.PathStatus(slowPath)
			if st.TunedConns != 4 || st.Connections != 4 || st.ConnsReason == "" {
				t.Errorf("status %+v: want 4 tuned connections in force, with a reason", st)
			}
			if tunes := s.Tunes(); len(tunes) != 1 || tunes[0].Conns != 4 || tunes[0].ConnsThrottled != 5 {
				t.Errorf("Tunes() = %+v, want 4 connections, refused at 5", tunes)
			}
		})
	}
}

// TestTuneConnsClimbs: from the starting 10 of a 40 ceiling, a site that
// takes 12 connections: the count climbs one at a time while the limit is
// what holds the traffic back, and settles at 12.
func TestTuneConnsClimbs(t *testing.T) {
	s, c, told := tuneShaper(outbound.Limits{Connections: 40}, connTuning)
	site := &hiddenConnSite{limit: 12}
	prev := s.Limits(slowPath).Connections
	simulateConns(s, c, site, 20*time.Minute, func(n int) {
		if n > prev+1 {
			t.Fatalf("connection limit leapt from %d to %d", prev, n)
		}
		prev = n
	})
	if len(*told) == 0 || !strings.Contains((*told)[0].ConnsReason, "up to 11") {
		t.Fatalf("changes %+v: want a climb from 10 first", *told)
	}
	if prev != 12 {
		t.Errorf("after 20 minutes the connection limit is %d, want the site's 12", prev)
	}
}

// TestTuneConnsLatency: a site with no connection limit that slows down
// by 60% for each connection past 6: a climb to 7 is undone, and the
// count stays at 6 (trying 7 once every 10 windows).
func TestTuneConnsLatency(t *testing.T) {
	s, c, _ := tuneShaper(outbound.Limits{Connections: 24}, connTuning)
	site := &hiddenConnSite{knee: 6}
	var last []int
	simulateConns(s, c, site, 30*time.Minute, func(n int) {
		if last = append(last, n); len(last) > 10*60*10 {
			last = last[1:]
		}
	})
	at6 := 0
	for _, n := range last {
		if n > 7 {
			t.Fatalf("connection limit %d over the last 10 minutes, want 6 (7 at most while trying)", n)
		}
		if n == 6 {
			at6++
		}
	}
	if at6 < len(last)*8/10 {
		t.Errorf("at 6 connections in %d of %d rounds over the last 10 minutes, want most", at6, len(last))
	}
	if st := s.PathStatus(slowPath); !strings.Contains(st.ConnsReason, "transaction time") && !strings.Contains(st.ConnsReason, "quiet windows") {
		t.Errorf("reason %q: want the transaction time (or the retry of 7)", st.ConnsReason)
	}
}

// TestTuneConnsLatencyFloor: a site that answers in a millisecond, 60%
// slower for each connection past 6, is not held at 6: a rise of under
// TuneConnLatencyFloor is noise, and the count climbs to the ceiling.
func TestTuneConnsLatencyFloor(t *testing.T) {
	s, c, _ := tuneShaper(outbound.Limits{Connections: 12}, connTuning)
	site := &hiddenConnSite{knee: 6, base: time.Millisecond}
	simulateConns(s, c, site, 10*time.Minute, nil)
	if n := s.Limits(slowPath).Connections; n != 12 {
		t.Errorf("connection limit %d after 10 minutes, want the ceiling 12 (reason %q)", n, s.PathStatus(slowPath).ConnsReason)
	}
}

// TestTuneConnsIdleAndCeiling: a limit that holds nothing back (the sender
// never uses all its connections) is not raised; a restored count is in
// force at once, under a later, lower ceiling the ceiling; a site that
// does not tune keeps its configured count.
func TestTuneConnsIdleAndCeiling(t *testing.T) {
	s, c, told := tuneShaper(outbound.Limits{Connections: 20}, connTuning)
	for range 600 { // a minute of 2 sessions at a time, under the starting 5
		for range 2 {
			out := ok()
			out.Elapsed, out.PoolOpen = 50*time.Millisecond, 2
			s.Observe(slowPath, out)
		}
		c.advance(100 * time.Millisecond)
	}
	if n := s.Limits(slowPath).Connections; n != 5 || len(*told) != 0 {
		t.Errorf("connection limit %d after a quiet minute (changes %+v), want the starting 5", n, *told)
	}

	if !s.RestoreTune(TuneState{Site: "mx.slow.test", Conns: 7, ConnsReason: "kept"}) {
		t.Fatal("RestoreTune refused a learned connection count")
	}
	if n := s.Limits(slowPath).Connections; n != 7 {
		t.Errorf("connection limit after restoring 7: %d", n)
	}
	low, _, _ := tuneShaper(outbound.Limits{Connections: 3}, connTuning)
	low.RestoreTune(TuneState{Site: "mx.slow.test", Conns: 7})
	if n := low.Limits(slowPath).Connections; n != 3 {
		t.Errorf("restored 7 under a ceiling of 3: limit %d, want 3", n)
	}
	off, _, _ := tuneShaper(outbound.Limits{Connections: 20}, Tuning{})
	off.RestoreTune(TuneState{Site: "mx.slow.test", Conns: 7})
	if n := off.Limits(slowPath).Connections; n != 20 {
		t.Errorf("a site without tune = true has %d connections, want its configured 20", n)
	}
}
