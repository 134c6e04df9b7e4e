package delivery

import (
	"fmt"
	"strings"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/engine/logrec"
	"gannet/engine/outbound"
)

// submitFrom hands the loop a message from sender to rcpts, with a
// Message-ID header equal to id.
func (p *realPath) submitFrom(t testing.TB, id, sender string, rcpts ...string) {
	t.Helper()
	m := newMessage(id, time.Now(), rcpts...)
	m.From = sender
	p.store.mu.Lock()
	p.store.bodies[id] = []byte("Message-ID: <" + id + ">\r\nSubject: test\r\n\r\nHello.\r\n")
	p.store.mu.Unlock()
	if err := p.loop.Enqueue(m); err != nil {
		t.Fatal(err)
	}
}

// recordsByRcpt lists, per recipient, the records' "Type attempts".
func recordsByRcpt(recs []logrec.Record) map[string][]string {
	by := map[string][]string{}
	for _, r := range recs {
		by[r.Recipient] = append(by[r.Recipient], fmt.Sprintf("%s %d", r.Type, r.NumAttempts))
	}
	return by
}

// TestSinkChainedDeliveries: a site's worker with mail waiting pipelines
// each next message behind the body before it: 150 messages over one
// connection reach bench/smtpsink once each, every recipient gets one
// Delivery record after one attempt, and the sink answers in about one
// round trip per message rather than two.
func TestSinkChainedDeliveries(t *testing.T) {
	var arr arrivals
	// The greeting waits, so that the mail is queued when the first body
	// goes.
	snk := startBenchSink(t, bsink.Config{OnMessage: arr.onMessage,
		Faults: bsink.Faults{Delays: []bsink.Delay{{Stage: bsink.StageConnect, Duration: 200 * time.Millisecond}}}})
	p := startRealPath(t, snk.Addr(), outbound.Limits{Connections: 1}, nil)
	const n = 150
	for i := range n {
		rcpts := []string{fmt.Sprintf("a%d@x.test", i)}
		if i%3 == 0 {
			rcpts = append(rcpts, fmt.Sprintf("b%d@x.test", i))
		}
		p.submitFrom(t, fmt.Sprintf("m%d", i), fmt.Sprintf("s%d@src.test", i), rcpts...)
	}
	waitFor(t, 20*time.Second, "all delivered", func() bool { return p.loop.Messages() == 0 })
	if got := arr.count(); got != n {
		t.Errorf("%d messages arrived, want %d", got, n)
	}
	if d := arr.duplicates(); len(d) > 0 {
		t.Errorf("duplicates: %v", d)
	}
	recs := p.rec.all()
	by := recordsByRcpt(recs)
	if len(by) != n+n/3 {
		t.Errorf("records for %d recipients, want %d", len(by), n+n/3)
	}
	for rc, got := range by {
		if strings.Join(got, ", ") != "Delivery 1" {
			t.Errorf("%s: %v, want one Delivery after one attempt", rc, got)
		}
	}
	// Each message left the spool once, by the removal that knows where
	// its record is.
	p.store.mu.Lock()
	for i := range n {
		id := fmt.Sprintf("m%d", i)
		if p.store.removed[id] != 1 || p.store.located[id] != 1 {
			t.Errorf("%s removed %d times, %d of them located", id, p.store.removed[id], p.store.located[id])
		}
	}
	p.store.mu.Unlock()
	st := snk.Stats()
	t.Logf("%d reply flushes for %d messages over %d connections", st.ReplyFlushes, n, st.Connections)
	if st.ReplyFlushes > n*3/2 {
		t.Errorf("the sink flushed its replies %d times for %d messages, want about one per message", st.ReplyFlushes, n)
	}
}

// TestSinkChainCutAfterDot: the receiver drops the connection right after
// one message's "." (every time). That message is deferred, attempt after
// attempt; the one pipelined behind it, which the receiver never read, goes
// back to the ready queue uncounted and is delivered once, after one
// attempt, on a new connection, as is every other message.
func TestSinkChainCutAfterDot(t *testing.T) {
	var arr arrivals
	snk := startBenchSink(t, bsink.Config{OnMessage: arr.onMessage, Faults: bsink.Faults{
		Delays: []bsink.Delay{{Stage: bsink.StageConnect, Duration: 200 * time.Millisecond}},
		Drops:  []bsink.Drop{{Stage: bsink.StageDot, Prob: 1, Match: "cut"}},
	}})
	p := startRealPath(t, snk.Addr(), outbound.Limits{Connections: 1}, nil)
	const n = 10
	for i := range n {
		from := fmt.Sprintf("s%d@src.test", i)
		if i == 3 {
			from = "cut@src.test"
		}
		p.submitFrom(t, fmt.Sprintf("m%d", i), from, fmt.Sprintf("r%d@x.test", i))
	}
	waitFor(t, 20*time.Second, "the others delivered and the cut one deferred", func() bool {
		return arr.count() == n-1 && len(recordsByRcpt(p.rec.all())["r3@x.test"]) > 0
	})
	by := recordsByRcpt(p.rec.all())
	for i := range n {
		rc := fmt.Sprintf("r%d@x.test", i)
		got := strings.Join(by[rc], ", ")
		if i == 3 {
			if !strings.HasPrefix(got, "TransientFailure 1") || strings.Contains(got, "Delivery") {
				t.Errorf("%s: %s, want deferred", rc, got)
			}
			continue
		}
		if got != "Delivery 1" {
			t.Errorf("%s: %s, want one Delivery after one attempt", rc, got)
		}
	}
	if d := arr.duplicates(); len(d) > 0 {
		t.Errorf("duplicates: %v", d)
	}
	if st := snk.Stats(); st.Connections < 2 || st.Dropped < 1 {
		t.Errorf("%d connections, %d dropped: the cut did not happen", st.Connections, st.Dropped)
	}
}
