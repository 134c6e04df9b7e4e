package outbound

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/resolver"
)

// sliceChain hands out a fixed list of messages, as the delivery loop's
// worker hands out its ready queue, and records what DeliverChain reports.
type sliceChain struct {
	msgs  []*Chained // msgs[0] is the first, given to DeliverChain
	next  int
	calls int // DeliverChain calls by deliver

	mu        sync.Mutex
	outcomes  map[int]Outcome
	attempted map[int]bool
	order     []int // the messages in the order Done reported them
}

func newSliceChain(route *resolver.Route, envs []*Envelope) *sliceChain {
	c := &sliceChain{outcomes: map[int]Outcome{}, attempted: map[int]bool{}}
	for i, e := range envs {
		c.msgs = append(c.msgs, &Chained{Route: route, Env: e, Ref: i})
	}
	return c
}

func (c *sliceChain) Next() *Chained {
	if c.next == len(c.msgs) {
		return nil
	}
	c.next++
	return c.msgs[c.next-1]
}

// deliver runs DeliverChain with the next message as the first, as a
// worker does with the next item of its queue; until no message is left
// when all is set.
func (c *sliceChain) deliver(m *Manager, all bool) {
	for c.next < len(c.msgs) {
		c.next++
		c.calls++
		m.DeliverChain(context.Background(), c.msgs[c.next-1], c)
		if !all {
			return
		}
	}
}

func (c *sliceChain) Done(ch *Chained, o Outcome, attempted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := ch.Ref.(int)
	if _, dup := c.outcomes[i]; dup {
		panic(fmt.Sprintf("message %d reported twice", i))
	}
	c.outcomes[i], c.attempted[i] = o, attempted
	c.order = append(c.order, i)
}

// status renders message i's outcome: "-" when not attempted, else each
// recipient's status and reply code.
func (c *sliceChain) status(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.outcomes[i]
	switch {
	case !ok:
		return "unreported"
	case !c.attempted[i]:
		return "-"
	}
	var s []string
	for _, r := range o.Results {
		s = append(s, fmt.Sprintf("%s %d", r.Status, r.Reply.Code))
	}
	return strings.Join(s, ", ")
}

// chainEnvs makes n messages, each from its own sender (which names it,
// and which the sink's faults match) to the recipients rcpts gives.
func chainEnvs(n int, sender func(i int) string, rcpts func(i int) []string) []*Envelope {
	envs := make([]*Envelope, n)
	for i := range envs {
		envs[i] = &Envelope{From: sender(i), Rcpts: rcpts(i),
			Body: fmt.Appendf(nil, "Message-ID: <m%d@src.test>\r\nSubject: %d\r\n\r\n.dot line of %d\r\n", i, i, i)}
	}
	return envs
}

// TestDeliverChainManyOverOneConnection: 60 messages handed over as a chain
// reach bench/smtpsink over one connection, in the clear and after
// STARTTLS, each once, with its own sender, recipients and body; the sink
// flushes its replies about once per message (the next envelope rides
// behind each body), where a transaction without pipelining behind the
// body needs two.
func TestDeliverChainManyOverOneConnection(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testChainOverOneConnection(t, false) })
	t.Run("STARTTLS", func(t *testing.T) { testChainOverOneConnection(t, true) })
}

func testChainOverOneConnection(t *testing.T, useTLS bool) {
	cfg := bsink.Config{Keep: true}
	if useTLS {
		tc, err := bsink.SelfSignedTLS("mx1.dst.test")
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
	}
	snk, err := bsink.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer snk.Close()
	port := netip.MustParseAddrPort(snk.Addr()).Port()
	m := newTestManager(t, port, func(o *Options) {
		o.Limits = func(Path) Limits { return Limits{Connections: 1} }
		if useTLS {
			o.TLS = TLSPolicy{Mode: TLSOpportunisticInsecure}
		}
	})
	const n = 60
	envs := chainEnvs(n, func(i int) string { return fmt.Sprintf("s%d@src.test", i) },
		func(i int) []string {
			return []string{fmt.Sprintf("a%d@dst.test", i), fmt.Sprintf("b%d@dst.test", i)}[:1+i%2]
		})
	ch := newSliceChain(routeTo("dst.test", "127.0.0.1"), envs)
	ch.deliver(m, false)
	for i := range n {
		want := "delivered 250"
		if i%2 == 1 {
			want += ", delivered 250"
		}
		if got := ch.status(i); got != want {
			t.Errorf("message %d: %s, want %s", i, got, want)
		}
		if ch.order[i] != i {
			t.Fatalf("outcomes reported in the order %v", ch.order)
		}
	}
	got := snk.Messages()
	if len(got) != n {
		t.Fatalf("the sink got %d messages, want %d", len(got), n)
	}
	for i, msg := range got {
		e := envs[i]
		if msg.From != e.From || strings.Join(msg.Rcpts, ",") != strings.Join(e.Rcpts, ",") || !bytes.Equal(msg.Data, e.Body) {
			t.Errorf("arrival %d: from %s to %v body %q; want message %d from %s to %v", i, msg.From, msg.Rcpts, msg.Data, i, e.From, e.Rcpts)
		}
	}
	st := snk.Stats()
	if st.Connections != 1 || useTLS && st.TLSHandshakes != 1 {
		t.Errorf("%d connections, %d TLS handshakes", st.Connections, st.TLSHandshakes)
	}
	// Greeting, EHLO and the first envelope take three; each body (with the
	// next envelope behind it) one. Without the chain it would be 2 per
	// message.
	t.Logf("%d reply flushes for %d messages", st.ReplyFlushes, n)
	if st.ReplyFlushes > n+n/2 {
		t.Errorf("the sink flushed its replies %d times for %d messages: the envelopes did not ride behind the bodies", st.ReplyFlushes, n)
	}
}

// TestDeliverChainRejections: refusals at every step of chained
// transactions — a sender, a recipient, DATA, the "." — decide only their
// own message: the others are delivered, each once, and every message gets
// the outcome it gets alone.
func TestDeliverChainRejections(t *testing.T) {
	snk, err := bsink.Start(bsink.Config{Keep: true, Faults: bsink.Faults{Failures: []bsink.Failure{
		{Stage: bsink.StageMail, Code: 550, Prob: 1, Match: "badsender", Text: "5.7.1 sender refused"},
		{Stage: bsink.StageRcpt, Code: 550, Prob: 1, Match: "nobody", Text: "5.1.1 no such user"},
		{Stage: bsink.StageRcpt, Code: 450, Prob: 1, Match: "busy", Text: "4.2.1 try later"},
		{Stage: bsink.StageData, Code: 451, Prob: 1, Match: "nodata", Text: "4.3.0 not now"},
		{Stage: bsink.StageDot, Code: 554, Prob: 1, Match: "spam", Text: "5.7.1 spam"},
		{Stage: bsink.StageDot, Code: 451, Prob: 1, Match: "later", Text: "4.3.0 later"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer snk.Close()
	m := newTestManager(t, netip.MustParseAddrPort(snk.Addr()).Port(), func(o *Options) {
		o.Limits = func(Path) Limits { return Limits{Connections: 1} }
	})
	cases := []struct {
		from  string
		rcpts []string
		want  string
	}{
		{"ok0@src.test", []string{"a@dst.test"}, "delivered 250"},
		{"spam1@src.test", []string{"a@dst.test"}, "bounced 554"},
		{"ok2@src.test", []string{"a@dst.test", "nobody@dst.test"}, "delivered 250, bounced 550"},
		{"badsender3@src.test", []string{"a@dst.test"}, "bounced 550"},
		{"ok4@src.test", []string{"a@dst.test"}, "delivered 250"},
		{"ok5@src.test", []string{"nobody@dst.test", "busy@dst.test"}, "bounced 550, transient 450"},
		{"ok6@src.test", []string{"b@dst.test"}, "delivered 250"},
		{"nodata7@src.test", []string{"a@dst.test"}, "transient 451"},
		{"later8@src.test", []string{"a@dst.test", "b@dst.test"}, "transient 451, transient 451"},
		{"ok9@src.test", []string{"c@dst.test"}, "delivered 250"},
		{"ok10@src.test", []string{"nobody@dst.test"}, "bounced 550"},
		{"ok11@src.test", []string{"d@dst.test"}, "delivered 250"},
	}
	envs := make([]*Envelope, len(cases))
	for i, c := range cases {
		envs[i] = &Envelope{From: c.from, Rcpts: c.rcpts, Body: fmt.Appendf(nil, "Subject: %d\r\n\r\nbody %d\r\n", i, i)}
	}
	ch := newSliceChain(routeTo("dst.test", "127.0.0.1"), envs)
	ch.deliver(m, true)
	var delivered []string
	for i, c := range cases {
		if got := ch.status(i); got != c.want {
			t.Errorf("message %d from %s: %s, want %s", i, c.from, got, c.want)
		}
		if strings.HasPrefix(c.want, "delivered") {
			delivered = append(delivered, c.from)
		}
	}
	var arrived []string
	for _, msg := range snk.Messages() {
		arrived = append(arrived, msg.From)
	}
	if strings.Join(arrived, " ") != strings.Join(delivered, " ") {
		t.Errorf("the sink got messages from %v, want %v", arrived, delivered)
	}
	if st := snk.Stats(); st.Connections != 1 {
		t.Errorf("%d connections, want 1", st.Connections)
	}
}

// TestDeliverChainCutAfterDot: the server closes the connection right after
// a message's "." — without a reply, or with 421. That message is
// transient (nothing is known of it, or the 421 says so); the one
// pipelined behind it got no reply at all and comes back unattempted, to
// go on another connection; those before it are delivered once.
func TestDeliverChainCutAfterDot(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault bsink.Faults
		want3 string
	}{
		{"dropped", bsink.Faults{Drops: []bsink.Drop{{Stage: bsink.StageDot, Prob: 1, Match: "cut"}}}, "transient 451"},
		{"421", bsink.Faults{Failures: []bsink.Failure{{Stage: bsink.StageDot, Code: 421, Prob: 1, Match: "cut"}}}, "transient 421"},
	} {
		t.Run(c.name, func(t *testing.T) {
			snk, err := bsink.Start(bsink.Config{Keep: true, Faults: c.fault})
			if err != nil {
				t.Fatal(err)
			}
			defer snk.Close()
			m := newTestManager(t, netip.MustParseAddrPort(snk.Addr()).Port(), func(o *Options) {
				o.Limits = func(Path) Limits { return Limits{Connections: 1} }
			})
			envs := chainEnvs(8, func(i int) string {
				if i == 3 {
					return "cut3@src.test"
				}
				return fmt.Sprintf("s%d@src.test", i)
			}, func(i int) []string { return []string{"a@dst.test"} })
			ch := newSliceChain(routeTo("dst.test", "127.0.0.1"), envs)
			ch.deliver(m, false)
			want := []string{"delivered 250", "delivered 250", "delivered 250", c.want3, "-"}
			for i, w := range want {
				if got := ch.status(i); got != w {
					t.Errorf("message %d: %s, want %s", i, got, w)
				}
			}
			if ch.next != len(want) {
				t.Errorf("the chain took %d messages, want %d (none after the cut)", ch.next, len(want))
			}
			if got := len(snk.Messages()); got != 3 {
				t.Errorf("the sink got %d messages, want 3", got)
			}
			// The message given back goes on a new connection.
			o := m.Deliver(context.Background(), ch.msgs[4].Route, ch.msgs[4].Env)
			wantStatuses(t, o, Delivered)
			if got := snk.Messages(); len(got) != 4 || got[3].From != envs[4].From {
				t.Errorf("after the retry the sink has %d messages", len(got))
			}
		})
	}
}

// TestDeliverChainBDAT: to a server that offers CHUNKING each message is
// one BDAT LAST write; the next one goes, RSET first, as soon as one is
// written, so that two are in flight. 40 messages reach bench/smtpsink once
// each, as BDAT, with their senders and recipients, over one connection —
// also when one sender is refused, whose chunk then goes nowhere and
// leaves the next transaction unharmed.
func TestDeliverChainBDAT(t *testing.T) {
	snk, err := bsink.Start(bsink.Config{Keep: true, Chunking: true, Faults: bsink.Faults{Failures: []bsink.Failure{
		{Stage: bsink.StageMail, Code: 550, Prob: 1, Match: "badsender", Text: "5.7.1 no"},
		{Stage: bsink.StageDot, Code: 554, Prob: 1, Match: "spam", Text: "5.7.1 spam"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer snk.Close()
	m := newTestManager(t, netip.MustParseAddrPort(snk.Addr()).Port(), func(o *Options) {
		o.Limits = func(Path) Limits { return Limits{Connections: 1} }
	})
	const n = 40
	sender := func(i int) string {
		switch i {
		case 7:
			return "badsender7@src.test"
		case 21:
			return "spam21@src.test"
		}
		return fmt.Sprintf("s%d@src.test", i)
	}
	envs := chainEnvs(n, sender, func(i int) []string { return []string{fmt.Sprintf("r%d@dst.test", i)} })
	ch := newSliceChain(routeTo("dst.test", "127.0.0.1"), envs)
	ch.deliver(m, true)
	var want []string
	for i := range n {
		w := "delivered 250"
		switch i {
		case 7:
			w = "bounced 550"
		case 21:
			w = "bounced 554"
		default:
			want = append(want, sender(i))
		}
		if got := ch.status(i); got != w {
			t.Errorf("message %d: %s, want %s", i, got, w)
		}
	}
	var got []string
	for _, msg := range snk.Messages() {
		got = append(got, msg.From)
		if !msg.Chunked {
			t.Errorf("message from %s came with DATA", msg.From)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the sink got messages from %v, want %v", got, want)
	}
	if st := snk.Stats(); st.Connections != 1 || ch.calls != 1 {
		t.Errorf("%d connections, %d chains, want 1 and 1", st.Connections, ch.calls)
	}
}

// TestDeliverChainSMTPSink: Postfix's smtp-sink takes a chain of 40
// messages over one connection, each once, with its recipients.
func TestDeliverChainSMTPSink(t *testing.T) {
	addr, dump := startSMTPSink(t)
	m := newTestManager(t, addr.Port(), func(o *Options) {
		o.Limits = func(Path) Limits { return Limits{Connections: 1} }
	})
	const n = 40
	envs := chainEnvs(n, func(i int) string { return fmt.Sprintf("s%d@src.test", i) },
		func(i int) []string { return []string{fmt.Sprintf("r%d@dst.test", i)} })
	ch := newSliceChain(routeTo("dst.test", "127.0.0.1"), envs)
	ch.deliver(m, false)
	for i := range n {
		if got := ch.status(i); got != "delivered 250" {
			t.Errorf("message %d: %s", i, got)
		}
	}
	var dumps []string
	for range 100 { // smtp-sink writes its dumps after its replies
		if dumps = readDumps(t, dump); len(dumps) == n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(dumps) != n {
		t.Fatalf("smtp-sink dumped %d messages, want %d", len(dumps), n)
	}
	for i := range n {
		from, rcpt, id := fmt.Sprintf("s%d@src.test", i), fmt.Sprintf("r%d@dst.test", i), fmt.Sprintf("<m%d@src.test>", i)
		found := 0
		for _, d := range dumps {
			if strings.Contains(d, id) {
				found++
				if !strings.Contains(d, from) || !strings.Contains(d, rcpt) {
					t.Errorf("message %d dumped without %s or %s:\n%s", i, from, rcpt, d)
				}
			}
		}
		if found != 1 {
			t.Errorf("message %d dumped %d times", i, found)
		}
	}
}

// BenchmarkDeliverChain delivers 2 KB messages with 2 recipients over one
// connection to bench/smtpsink, with DATA and with BDAT (the sink offers
// CHUNKING): one Deliver after another ("one-by-one": with DATA the
// envelope and the body each a round trip), and as chains of 100
// ("chained": with DATA each envelope pipelined behind the body before it,
// with BDAT each transaction written while the one before awaits its
// replies). flushes/msg is the sink's reply flushes per message: the round
// trips.
func BenchmarkDeliverChain(b *testing.B) {
	body := []byte("Subject: bench\r\n\r\n" + strings.Repeat(benchLine, 2048/len(benchLine)))
	e := &Envelope{From: "s@src.test", Rcpts: []string{"a@dst.test", "b@dst.test"}, Body: body}
	for _, mode := range []struct {
		name              string
		chained, chunking bool
	}{{"DATA/one-by-one", false, false}, {"DATA/chained", true, false}, {"BDAT/one-by-one", false, true}, {"BDAT/chained", true, true}} {
		chained := mode.chained
		b.Run(mode.name, func(b *testing.B) {
			snk, err := bsink.Start(bsink.Config{Chunking: mode.chunking})
			if err != nil {
				b.Fatal(err)
			}
			defer snk.Close()
			m := newTestManager(b, netip.MustParseAddrPort(snk.Addr()).Port(), func(o *Options) {
				o.Limits = func(Path) Limits { return Limits{Connections: 1} }
			})
			route := routeTo("dst.test", "127.0.0.1")
			m.Deliver(context.Background(), route, e) // the connection
			before := snk.Stats().ReplyFlushes
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(b.N-done, 100)
				if !chained {
					k = 1
				}
				envs := make([]*Envelope, k)
				for i := range envs {
					envs[i] = e
				}
				ch := newSliceChain(route, envs)
				ch.deliver(m, true)
				if ch.status(k-1) != "delivered 250, delivered 250" {
					b.Fatalf("not delivered: %s", ch.status(k-1))
				}
				done += k
			}
			b.StopTimer()
			b.ReportMetric(float64(snk.Stats().ReplyFlushes-before)/float64(b.N), "flushes/msg")
		})
	}
}
