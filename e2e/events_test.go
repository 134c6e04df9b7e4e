package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/internal/rabbitmqtest"
)

// webhookReceiver is a customer's webhook endpoint: a real HTTP server on
// loopback that checks every request's X-Gannet-Signature by the scheme of
// docs/contract.md ("Event sinks"), and records which record uuids came
// under which Idempotency-Key.
type webhookReceiver struct {
	secret string
	url    string
	srv    *http.Server

	mu      sync.Mutex
	up      bool
	delay   time.Duration       // before each answer: a slow receiver
	taken   map[string]int      // uuid → times taken (2xx)
	keys    map[string][]string // Idempotency-Key → uuids of its first request
	badKey  []string            // a key sent again with other records
	badSig  int
	refused int // requests answered 503 while down
}

func startWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	if err != nil {
		t.Fatal(err)
	}
	w := &webhookReceiver{secret: secret, url: "http://" + ln.Addr().String() + "/gannet-events",
		taken: map[string]int{}, keys: map[string][]string{}}
	w.srv = &http.Server{Handler: w, ReadHeaderTimeout: 5 * time.Second}
	go w.srv.Serve(ln)
	t.Cleanup(func() { w.srv.Close() })
	return w
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	ts := r.Header.Get("X-Gannet-Timestamp")
	m := hmac.New(sha256.New, []byte(w.secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	ok := err == nil && hmac.Equal([]byte("v1="+hex.EncodeToString(m.Sum(nil))), []byte(r.Header.Get("X-Gannet-Signature")))
	var recs []struct {
		UUID string `json:"uuid"`
		Type string `json:"type"`
	}
	if ok {
		ok = json.Unmarshal(body, &recs) == nil && len(recs) > 0
	}
	w.mu.Lock()
	delay := w.delay
	w.mu.Unlock()
	time.Sleep(delay)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !ok {
		w.badSig++
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	uuids := make([]string, len(recs))
	for i, rec := range recs {
		uuids[i] = rec.UUID
	}
	key := r.Header.Get("Idempotency-Key")
	if prev, seen := w.keys[key]; !seen {
		w.keys[key] = uuids
	} else if !slices.Equal(prev, uuids) {
		w.badKey = append(w.badKey, key)
	}
	if !w.up {
		w.refused++
		rw.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	for _, u := range uuids {
		w.taken[u]++
	}
	rw.WriteHeader(http.StatusNoContent)
}

// startHookGannet starts a gannet relaying to a bench/smtpsink that ships
// its Reception and Delivery records to hook in batches.
func startHookGannet(t *testing.T, hook *webhookReceiver, maxBatch int, maxDelay string) (*gannet, *goSink) {
	t.Helper()
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	g := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()),
		Extra: fmt.Sprintf(`
[[event_sink]]
name = "hooks"
kind = "webhook"
url = %q
secret = %q
batch = true
max_batch = %d
max_delay = %q
types = ["Reception", "Delivery"]
`, hook.url, hook.secret, maxBatch, maxDelay)})
	return g, sink
}

// sendEventMail injects n messages (numbered from on) and waits until
// the sink has from+n.
func sendEventMail(t *testing.T, g *gannet, sink *goSink, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		injectSimple(t, g, fmt.Sprintf("ev%d@events.example", i), "acme", "launch", fmt.Sprintf("event %d", i))
	}
	waitFor(t, deliveryMax, fmt.Sprintf("%d messages at the sink", from+n), func() (bool, string) {
		got := len(sink.arrivals(t))
		return got >= from+n, fmt.Sprintf("%d arrived", got)
	})
}

// waitAll waits until every Reception and Delivery record of g's log
// files, at least least of them, was taken by the receiver, and checks
// that every request was signed and no key came back with other records.
func (w *webhookReceiver) waitAll(t *testing.T, g *gannet, least int) {
	t.Helper()
	var want []string
	waitFor(t, 60*time.Second, "every Reception and Delivery record at the webhook", func() (bool, string) {
		want = want[:0]
		var missing []string
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, r := range g.Records() {
			if r.Type != "Reception" && r.Type != "Delivery" {
				continue
			}
			want = append(want, r.UUID)
			if r.UUID == "" || w.taken[r.UUID] == 0 {
				missing = append(missing, r.Type+" "+r.ID+" "+r.UUID)
			}
		}
		return len(want) >= least && len(missing) == 0, fmt.Sprintf("%d records, %d missing: %v", len(want), len(missing), missing[:min(5, len(missing))])
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	dups := 0
	for _, n := range w.taken {
		dups += n - 1
	}
	if w.badSig != 0 || len(w.badKey) != 0 {
		t.Errorf("%d requests failed the signature check; keys sent again with other records: %v", w.badSig, w.badKey)
	}
	t.Logf("%d records shipped, %d duplicates, %d requests refused while down", len(w.taken), dups, w.refused)
}

// shipped is how many records the receiver took.
func (w *webhookReceiver) shipped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.taken)
}

// TestE2EEventsKill9MidShipping: gannet ships to a slow webhook and is
// killed with SIGKILL while batches are in flight, after its log files
// hold the records (so the journal does); started again on the same
// spool, with more mail, every Reception and Delivery record of both runs
// reaches the receiver, the batch cut short again under its key.
func TestE2EEventsKill9MidShipping(t *testing.T) {
	hook := startWebhookReceiver(t, "e2e-webhook-secret")
	hook.setUp(true)
	hook.mu.Lock()
	hook.delay = 200 * time.Millisecond // 80 records in batches of 5: over 3 s
	hook.mu.Unlock()
	g, sink := startHookGannet(t, hook, 5, "50ms")
	sendEventMail(t, g, sink, 0, 40)
	g.WaitRecords(recordFilter{Type: "Delivery"}, 40, 10*time.Second)
	if n := hook.shipped(); n >= 80 {
		t.Fatalf("all %d records shipped before the kill: the receiver is not slow enough for this test", n)
	}
	g.Kill9()
	t.Logf("killed with %d of 80 records shipped", hook.shipped())
	hook.mu.Lock()
	hook.delay = 0
	hook.mu.Unlock()
	g.Restart()
	sendEventMail(t, g, sink, 40, 10)
	hook.waitAll(t, g, 100)
}

func (w *webhookReceiver) setUp(up bool) {
	w.mu.Lock()
	w.up = up
	w.mu.Unlock()
}

// TestE2EEventsWebhookDownAndRestart: a gannet relaying to bench/smtpsink
// ships its log records to a webhook that is down at first. Mail flows
// meanwhile; gannet is restarted (SIGTERM) with records still unshipped,
// and more mail flows; then the receiver comes up. Every record of the log
// files of both runs (each with its uuid) reaches the receiver, signed, at
// least once; a request sent again carries the same key and the same
// records; `gannet events status` and the metrics tell the story.
func TestE2EEventsWebhookDownAndRestart(t *testing.T) {
	hook := startWebhookReceiver(t, "e2e-webhook-secret")
	g, sink := startHookGannet(t, hook, 25, "100ms")

	send := func(from, n int) { sendEventMail(t, g, sink, from, n) }
	send(0, 30)
	waitFor(t, 20*time.Second, "refused webhook requests", func() (bool, string) {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return hook.refused >= 2, fmt.Sprintf("%d refused", hook.refused)
	})
	out, errOut, code := runGannetCLI(t, g, "events", "status")
	if code != 0 || !strings.Contains(out, "hooks") || !strings.Contains(out, "503") || !strings.Contains(out, "never") {
		t.Errorf("events status while the receiver is down (exit %d):\n%s%s", code, out, errOut)
	}
	t.Logf("gannet events status, receiver down:\n%s", out)

	g.Stop()
	g.Restart()
	send(30, 30)
	hook.setUp(true)

	hook.waitAll(t, g, 120)

	waitFor(t, 10*time.Second, "an empty backlog", func() (bool, string) {
		m := scrapeMetrics(t, g.HTTPAddr)
		backlog := m.values[`gannet_event_backlog{sink="hooks"}`]
		ok := m.values[`gannet_events_shipped_total{sink="hooks",result="ok"}`]
		return backlog == 0 && ok >= 1, fmt.Sprintf("backlog %v, ok %v", backlog, ok)
	})
	out, errOut, code = runGannetCLI(t, g, "events", "status")
	if code != 0 || !strings.Contains(out, "ago") || !strings.Contains(out, "hooks") {
		t.Errorf("events status after shipping (exit %d):\n%s%s", code, out, errOut)
	}
	t.Logf("gannet events status, after:\n%s", out)
}

// rabbit is the rabbitmq-server the e2e tests share (it takes seconds to
// start): started by the first test that needs it, stopped by TestMain.
var rabbit struct {
	once sync.Once
	srv  *rabbitmqtest.Server
	err  error
}

func needRabbit(t *testing.T) *rabbitmqtest.Server {
	t.Helper()
	rabbit.once.Do(func() { rabbit.srv, rabbit.err = rabbitmqtest.Start() })
	if rabbit.err != nil {
		missingPeer(t, "rabbitmq-server", rabbit.err.Error())
	}
	return rabbit.srv
}

func stopRabbit() {
	if rabbit.srv != nil {
		rabbit.srv.Stop()
	}
}

// TestE2EEventsAMQPBrokerRestart: a gannet relaying to bench/smtpsink
// publishes its log records to a real RabbitMQ exchange; the broker is
// stopped while mail flows and started again. Every Reception and Delivery
// record of the log files is then in the durable queue bound to the
// exchange, with its uuid as message id and the routing key of the
// template.
func TestE2EEventsAMQPBrokerRestart(t *testing.T) {
	rb := needRabbit(t)
	const exchange, queue = "gannet.e2e", "gannet-e2e-events"
	if err := rb.Declare(exchange, queue); err != nil {
		t.Fatal(err)
	}
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	g := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()),
		Extra: fmt.Sprintf(`
[[event_sink]]
name = "bus"
kind = "amqp"
url = %q
exchange = %q
routing_key = "{type}.{tenant}"
batch = true
max_batch = 50
max_delay = "100ms"
timeout = "5s"
`, rb.URL(), exchange)})
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			injectSimple(t, g, fmt.Sprintf("bus%d@events.example", i), "globex", "q4", fmt.Sprintf("bus %d", i))
		}
		waitFor(t, deliveryMax, fmt.Sprintf("%d messages at the sink", from+n), func() (bool, string) {
			got := len(sink.arrivals(t))
			return got >= from+n, fmt.Sprintf("%d arrived", got)
		})
	}
	shipped := func() float64 {
		return scrapeMetrics(t, g.HTTPAddr).values[`gannet_events_shipped_total{sink="bus",result="ok"}`]
	}
	send(0, 30)
	waitFor(t, 30*time.Second, "records confirmed by the broker", func() (bool, string) {
		n := shipped()
		return n >= 60, fmt.Sprintf("%v shipped", n)
	})
	rb.StopBroker()
	send(30, 30)
	waitFor(t, 30*time.Second, "a failed attempt", func() (bool, string) {
		out, errOut, _ := runGannetCLI(t, g, "events", "status")
		return strings.Contains(out, "ago: amqp"), out + errOut
	})
	if err := rb.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "an empty backlog", func() (bool, string) {
		m := scrapeMetrics(t, g.HTTPAddr)
		b := m.values[`gannet_event_backlog{sink="bus"}`]
		return b == 0 && shipped() >= 120, fmt.Sprintf("backlog %v, shipped %v", b, shipped())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := rb.Drain(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	inQueue := map[string]rabbitmqtest.Message{}
	for _, m := range msgs {
		inQueue[m.ID] = m
	}
	var missing, wrong []string
	n := 0
	for _, r := range g.Records() {
		if r.Type != "Reception" && r.Type != "Delivery" {
			continue
		}
		n++
		m, ok := inQueue[r.UUID]
		switch {
		case r.UUID == "" || !ok:
			missing = append(missing, r.Type+" "+r.ID)
		case m.RoutingKey != r.Type+".globex" || !m.Persistent || m.Type != r.Type:
			wrong = append(wrong, fmt.Sprintf("%s: key %s type %s persistent %v", r.UUID, m.RoutingKey, m.Type, m.Persistent))
		}
	}
	if n < 120 || len(missing) > 0 || len(wrong) > 0 {
		t.Errorf("%d records in the log; missing from the queue: %v; wrong: %v", n, missing, wrong)
	}
	t.Logf("%d records in the log, %d messages in the queue (%d duplicates)", n, len(msgs), len(msgs)-len(inQueue))
}

// TestE2EEventsPythonReceiver: a webhook receiver written in Python from
// the contract alone (e2e/testdata/webhook_receiver.py, with the contract's
// verify()) takes every record of a gannet relaying to bench/smtpsink,
// one per request with the record's uuid as Idempotency-Key; it answers
// 400 to one tenant's records, which gannet drops without retrying and
// counts (gannet_events_shipped_total{result="rejected"}).
func TestE2EEventsPythonReceiver(t *testing.T) {
	const secret = "python-receiver-secret"
	py := needExecutable(t, "/usr/bin/python3", "python3")
	port := freePort(t, false, "127.0.0.1")
	out := filepath.Join(t.TempDir(), "requests.jsonl")
	rcv := startProc(t, py, "testdata/webhook_receiver.py", strconv.Itoa(port), secret, out)
	waitFor(t, 20*time.Second, "the Python receiver listening", func() (bool, string) {
		c, err := net.Dial("tcp", hostPort("127.0.0.1", port))
		if err == nil {
			c.Close()
		}
		return err == nil && !rcv.exited(), fmt.Sprint(err)
	})
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	g := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()),
		Extra: fmt.Sprintf(`
[[event_sink]]
name = "py"
kind = "webhook"
url = "http://127.0.0.1:%d/events"
secret = %q
types = ["Reception", "Delivery"]
`, port, secret)})
	for i := range 10 {
		tenant := "keep"
		if i%2 == 1 {
			tenant = "reject"
		}
		injectSimple(t, g, fmt.Sprintf("py%d@events.example", i), tenant, "", fmt.Sprintf("python %d", i))
	}
	waitFor(t, deliveryMax, "10 messages at the sink", func() (bool, string) {
		n := len(sink.arrivals(t))
		return n >= 10, fmt.Sprintf("%d arrived", n)
	})
	type request struct {
		Status int      `json:"status"`
		Key    string   `json:"key"`
		UUIDs  []string `json:"uuids"`
	}
	var reqs []request
	var keep, reject []string
	waitFor(t, 30*time.Second, "every record answered by the receiver", func() (bool, string) {
		reqs, keep, reject = reqs[:0], keep[:0], reject[:0]
		b, _ := os.ReadFile(out)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r request
			if json.Unmarshal([]byte(line), &r) == nil {
				reqs = append(reqs, r)
			}
		}
		answered := map[string]bool{}
		for _, r := range reqs {
			for _, u := range r.UUIDs {
				answered[u] = true
			}
		}
		missing := 0
		for _, r := range g.Records() {
			if r.Type != "Reception" && r.Type != "Delivery" {
				continue
			}
			if r.Tenant == "reject" {
				reject = append(reject, r.UUID)
			} else {
				keep = append(keep, r.UUID)
			}
			if !answered[r.UUID] {
				missing++
			}
		}
		return len(keep)+len(reject) >= 20 && missing == 0, fmt.Sprintf("%d requests, %d records missing", len(reqs), missing)
	})
	tries := map[string]int{}
	status := map[string]int{}
	for _, r := range reqs {
		if r.Status == 401 || len(r.UUIDs) != 1 || r.Key != r.UUIDs[0] {
			t.Errorf("request %+v: want a valid signature, one record, its uuid as key", r)
			continue
		}
		tries[r.Key]++
		status[r.Key] = r.Status
	}
	for _, u := range reject {
		if tries[u] != 1 || status[u] != 400 {
			t.Errorf("record %s of tenant reject: %d requests (want 1), answered %d", u, tries[u], status[u])
		}
	}
	for _, u := range keep {
		if status[u] != 204 {
			t.Errorf("record %s of tenant keep answered %d", u, status[u])
		}
	}
	waitFor(t, 10*time.Second, "the counts", func() (bool, string) {
		m := scrapeMetrics(t, g.HTTPAddr)
		ok, rej := m.values[`gannet_events_shipped_total{sink="py",result="ok"}`], m.values[`gannet_events_shipped_total{sink="py",result="rejected"}`]
		return ok == float64(len(keep)) && rej == float64(len(reject)), fmt.Sprintf("ok %v rejected %v, want %d %d", ok, rej, len(keep), len(reject))
	})
}
