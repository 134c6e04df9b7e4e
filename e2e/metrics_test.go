package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gannet/engine/logrec"
)

// metricsScrape is one GET /metrics: the raw text and the value of every
// sample, keyed by the series as written (`name{label="value",…}`).
type metricsScrape struct {
	text   string
	values map[string]float64
}

// scrapeMetrics fetches http://ADDR/metrics, with an API key when one is
// given (a policy script's http_request hook may want one).
func scrapeMetrics(t testing.TB, httpAddr string, apiKey ...string) metricsScrape {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range apiKey {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics Content-Type %q, want the Prometheus text format", ct)
	}
	s := metricsScrape{text: string(body), values: map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		s.values[line[:i]] = v
	}
	return s
}

// get returns the value of one series; a missing series fails the test.
func (s metricsScrape) get(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := s.values[series]
	if !ok {
		t.Errorf("/metrics has no series %s", series)
	}
	return v
}

// sum adds the values of every series of family name, and returns the
// label sets seen (the part between the braces).
func (s metricsScrape) sum(name string) (float64, []string) {
	total, labels := 0.0, []string(nil)
	for k, v := range s.values {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
			labels = append(labels, strings.TrimPrefix(k, name))
		}
	}
	sort.Strings(labels)
	return total, labels
}

// promtoolCheckMetrics runs Prometheus' own parser and linter over a
// scrape. Exit status 3 means lint findings only: those about the
// library's go_*/process_* metrics are not Gannet's; any about gannet_*
// fail the test.
func promtoolCheckMetrics(t *testing.T, text string) {
	t.Helper()
	promtool := needExecutable(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "gannet_") {
				t.Errorf("promtool check metrics: %s", strings.TrimSpace(l))
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// httpInject posts one message to POST /v1/message and returns its id.
func httpInject(t testing.TB, httpAddr string, req map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(req)
	resp, err := http.Post("http://"+httpAddr+"/v1/message", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST /v1/message: %v", err)
	}
	defer resp.Body.Close()
	var ans struct {
		ID string `json:"id"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &ans) != nil || ans.ID == "" {
		t.Fatalf("POST /v1/message: %d %s", resp.StatusCode, body)
	}
	return ans.ID
}

// TestE2EObservability runs mail through gannet with retries, a bounce
// and deliveries, then checks what an operator watches:
//
//   - /metrics passes `promtool check metrics` (Prometheus' parser) and
//     every contract metric moved as the mail flowed: received per
//     listener, delivered, transient failures, bounced with its class, the
//     latency histogram's count, queue depths (seen non-zero during the
//     retry wait, zero at the end), the labelled per-domain, per-site,
//     per-tenant series with the cap of [metrics] max_destination_labels;
//   - the log records alone tell each recipient's final state, and it is
//     what the receivers saw.
//
// With GANNET_METRICS_OUT=FILE the final scrape is also written there; -v
// prints it.
func TestE2EObservability(t *testing.T) {
	w := newRelayWorld(t)
	retrying := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{TempfailFirst: "451 4.3.0 try again later"})
	refusing := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{FailRcpt: "550 5.1.1 no such user here"})
	plain := startAiosmtpd(t, hostPort(mxIP3, w.port), aioOptions{})
	// A 3 s retry leaves time to see the deferred recipients queued. At
	// most two domains (of three) get series of their own.
	g := w.gannet(t, gannetConfig{RetryInterval: "3s", MaxRetryInterval: "3s", Extra: `
[metrics]
max_destination_labels = 2
`})

	meta := func(tenant, campaign string) []byte {
		return []byte("X-Tenant: " + tenant + "\r\nX-Campaign: " + campaign + "\r\n")
	}
	rA1, rA2, rB, rC := "a1@"+domain1, "a2@"+domain1, "nobody@"+domain2, "c@"+domain3
	msgA := append(meta("acme", "spring"), simpleMessage(senderAddr, rA1, "retried", "Second time lucky.\n")...)
	msgB := append(meta("acme", "spring"), simpleMessage(senderAddr, rB, "bounced", "Nobody home.\n")...)
	msgC := append(meta("beta", "summer"), simpleMessage(senderAddr, rC, "plain", "Straight through.\n")...)
	// One connection, in this order: d1.test and d2.test are the first
	// two domains seen, so they get the two series; d3.test is "other".
	res := smtplibSend(t, g.SMTPAddr, []pyMessage{
		{From: senderAddr, To: []string{rA1, rA2}, Data: msgA},
		{From: senderAddr, To: []string{rB}, Data: msgB},
		{From: senderAddr, To: []string{rC}, Data: msgC},
	})
	idA, idB, idC := acceptedID(t, res[0].Data), acceptedID(t, res[1].Data), acceptedID(t, res[2].Data)
	rD := "h@" + domain3
	idD := httpInject(t, g.HTTPAddr, map[string]any{"from": "app@src.test", "to": []string{rD},
		"subject": "from http", "text": "Injected.\n", "tenant": "beta", "campaign": "summer"})

	// While d1.test's recipients wait for their retry, the queue shows them.
	waitFor(t, deliveryMax, "the deferred recipients in the queue gauges", func() (bool, string) {
		s := scrapeMetrics(t, g.HTTPAddr)
		sched := s.values[`gannet_queue_depth{queue="scheduled"}`]
		d1 := s.values[`gannet_domain_queue_depth{domain="d1.test"}`]
		return sched >= 1 && d1 == 2, fmt.Sprintf("scheduled %v, d1.test %v", sched, d1)
	})

	g.WaitRecords(recordFilter{Type: "Delivery", ID: idA}, 2, deliveryMax)
	g.WaitRecords(recordFilter{Type: "Bounce", ID: idB}, 1, deliveryMax)
	g.WaitRecords(recordFilter{Type: "Delivery", ID: idC}, 1, deliveryMax)
	g.WaitRecords(recordFilter{Type: "Delivery", ID: idD}, 1, deliveryMax)
	var s metricsScrape
	waitFor(t, 10*time.Second, "the counters to settle", func() (bool, string) {
		s = scrapeMetrics(t, g.HTTPAddr)
		q := s.values[`gannet_queue_depth{queue="scheduled"}`] + s.values[`gannet_queue_depth{queue="ready"}`]
		conns := s.values[`gannet_connections{direction="in"}`]
		return s.values["gannet_messages_delivered_total"] == 4 && q == 0 && conns == 0,
			fmt.Sprintf("delivered %v, queued %v, inbound connections %v", s.values["gannet_messages_delivered_total"], q, conns)
	})
	saveScrape(t, g, s.text)

	t.Run("promtool", func(t *testing.T) { promtoolCheckMetrics(t, s.text) })

	t.Run("contract counters", func(t *testing.T) {
		for series, want := range map[string]float64{
			`gannet_messages_received_total{listener="e2e-in"}`:            3,
			`gannet_messages_received_total{listener="http"}`:              1,
			`gannet_messages_delivered_total`:                              4, // a1, a2 (after a retry), c, h
			`gannet_messages_transient_failures_total`:                     2, // a1, a2: 451 at the first attempt
			`gannet_messages_bounced_total`:                                1, // nobody@d2.test: 550 5.1.1
			`gannet_messages_expired_total`:                                0,
			`gannet_delivery_latency_seconds_count`:                        4,
			`gannet_delivery_latency_seconds_bucket{le="+Inf"}`:            4,
			`gannet_queue_depth{queue="scheduled"}`:                        0,
			`gannet_queue_depth{queue="ready"}`:                            0,
			`gannet_connections{direction="in"}`:                           0,
			`gannet_spool_commit_seconds_count`:                            4,
			`gannet_tls_failures_total{policy="none",result_type="other"}`: 0,
			`gannet_bounces_total{class="InvalidRecipient"}`:               1,
		} {
			if got := s.get(t, series); got != want {
				t.Errorf("%s = %v, want %v", series, got, want)
			}
		}
		// The two retried deliveries waited at least retry_interval.
		if sum := s.get(t, "gannet_delivery_latency_seconds_sum"); sum < 6 {
			t.Errorf("delivery latency sum %v s, want ≥ 6 (two deliveries after a 3 s retry)", sum)
		}
		if fast := s.get(t, `gannet_delivery_latency_seconds_bucket{le="2.5"}`); fast != 2 {
			t.Errorf("%v deliveries within 2.5 s, want the 2 that were not retried", fast)
		}
		if n := s.get(t, `gannet_smtp_errors_total{direction="out"}`); n < 3 {
			t.Errorf("outbound SMTP errors %v, want ≥ 3 (two 451, one 550)", n)
		}
		s.get(t, `gannet_smtp_errors_total{direction="in"}`)
		s.get(t, `gannet_connections{direction="out"}`)
		if n := s.get(t, `gannet_connections_opened_total{direction="in"}`); n < 1 {
			t.Errorf("inbound connections opened %v", n)
		}
		if n := s.get(t, `gannet_connections_opened_total{direction="out"}`); n < 3 {
			t.Errorf("outbound sessions opened %v, want ≥ 3 (three MX hosts)", n)
		}
		if n, _ := s.sum("gannet_transient_failures_by_class_total"); n != 2 {
			t.Errorf("transient failures by class sum to %v, want 2", n)
		}
		for _, fam := range []string{"gannet_site_effective_rate", "process_cpu_seconds_total", "go_goroutines"} {
			if n, labels := s.sum(fam); labels == nil {
				t.Errorf("no %s series (%v)", fam, n)
			}
		}
		for _, typ := range []string{"gannet_delivery_latency_seconds histogram", "gannet_spool_commit_seconds histogram"} {
			if !strings.Contains(s.text, "# TYPE "+typ+"\n") {
				t.Errorf("no # TYPE %s", typ)
			}
		}
	})

	t.Run("labelled series and cap", func(t *testing.T) {
		for series, want := range map[string]float64{
			`gannet_domain_messages_received_total{domain="d1.test"}`:              2,
			`gannet_domain_messages_transient_failures_total{domain="d1.test"}`:    2,
			`gannet_domain_messages_delivered_total{domain="d1.test"}`:             2,
			`gannet_domain_messages_bounced_total{domain="d2.test"}`:               1,
			`gannet_domain_messages_delivered_total{domain="other"}`:               2, // d3.test, past the cap
			`gannet_tenant_messages_delivered_total{tenant="acme"}`:                2,
			`gannet_tenant_messages_bounced_total{tenant="acme"}`:                  1,
			`gannet_tenant_messages_delivered_total{tenant="beta"}`:                2,
			`gannet_campaign_messages_transient_failures_total{campaign="spring"}`: 2,
		} {
			if got := s.get(t, series); got != want {
				t.Errorf("%s = %v, want %v", series, got, want)
			}
		}
		for _, fam := range []string{"gannet_domain_messages_delivered_total", "gannet_site_messages_delivered_total",
			"gannet_domain_messages_received_total", "gannet_site_messages_transient_failures_total"} {
			total, labels := s.sum(fam)
			named := 0
			for _, l := range labels {
				if !strings.Contains(l, `"other"`) {
					named++
				}
			}
			if named > 2 {
				t.Errorf("%s has %d named series %v; max_destination_labels is 2", fam, named, labels)
			}
			want := map[string]float64{"gannet_domain_messages_delivered_total": 4, "gannet_site_messages_delivered_total": 4,
				"gannet_domain_messages_received_total": 5, "gannet_site_messages_transient_failures_total": 2}[fam]
			if total != want {
				t.Errorf("%s sums to %v over %v, want %v", fam, total, labels, want)
			}
		}
	})

	t.Run("records replay", func(t *testing.T) {
		replayRecords(t, g, s, map[string]receiver{domain1: retrying, domain2: refusing, domain3: plain},
			map[string]string{rA1: "delivered", rA2: "delivered", rB: "bounced", rC: "delivered", rD: "delivered"})
	})
}

// recipientState is what the log records say about one recipient of one
// message.
type recipientState struct {
	received  bool
	transient int
	final     logrec.Type // Delivery, Bounce, Expiration, AdminBounce; "" while pending
	finals    int
	attempts  int // num_attempts of the final record
	class     string
}

// replayRecords reads every log record with engine/logrec's reader and
// rebuilds each recipient's state from them alone, then checks it against
// the receivers and the metrics. Records of one message need not be in
// time order (a fast first attempt can be logged before the Reception),
// so the state is derived from which records exist, not their order.
func replayRecords(t *testing.T, g *gannet, s metricsScrape, receivers map[string]receiver, want map[string]string) {
	t.Helper()
	states := map[string]*recipientState{} // "id recipient"
	counts := map[logrec.Type]int{}
	err := logrec.ReadDir(g.LogDir, func(r *logrec.Record) error {
		counts[r.Type]++
		key := r.ID + " " + r.Recipient
		st := states[key]
		if st == nil {
			st = &recipientState{}
			states[key] = st
		}
		switch r.Type {
		case logrec.Reception:
			st.received = true
		case logrec.TransientFailure:
			st.transient++
			if r.BounceClassification == "" {
				t.Errorf("TransientFailure record without bounce_classification: %+v", r)
			}
		case logrec.Delivery, logrec.Bounce, logrec.Expiration, logrec.AdminBounce:
			st.final, st.attempts, st.class = r.Type, r.NumAttempts, r.BounceClassification
			st.finals++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the log records: %v", err)
	}
	derived := map[string]string{} // recipient → state, from the records
	for key, st := range states {
		rcpt := key[strings.IndexByte(key, ' ')+1:]
		if !st.received {
			t.Errorf("%s: outcome records but no Reception", key)
		}
		if st.finals > 1 {
			t.Errorf("%s: %d final records", key, st.finals)
		}
		state := map[logrec.Type]string{logrec.Delivery: "delivered", logrec.Bounce: "bounced",
			logrec.Expiration: "expired", logrec.AdminBounce: "bounced", "": "pending"}[st.final]
		derived[rcpt] = state
		switch rcpt {
		case "a1@" + domain1, "a2@" + domain1:
			if st.transient != 1 || st.attempts != 2 {
				t.Errorf("%s: %d TransientFailure records, delivered at attempt %d; want 1 and 2", rcpt, st.transient, st.attempts)
			}
		case "nobody@" + domain2:
			if st.class != "InvalidRecipient" {
				t.Errorf("%s: bounce_classification %q, want InvalidRecipient", rcpt, st.class)
			}
		}
	}
	if fmt.Sprint(derived) != fmt.Sprint(want) {
		t.Errorf("final states from the records:\n %v\nwant\n %v", derived, want)
	}
	// What the receivers got is exactly the recipients the records call
	// delivered.
	got := map[string]string{}
	for _, r := range receivers {
		for _, a := range r.arrivals(t) {
			for _, rc := range a.Rcpts {
				got[strings.Trim(rc, "<>")] = "delivered"
			}
		}
	}
	for rcpt, st := range derived {
		if (st == "delivered") != (got[rcpt] == "delivered") {
			t.Errorf("%s: records say %s, the receiver %s", rcpt, st, map[bool]string{true: "got it", false: "did not get it"}[got[rcpt] != ""])
		}
	}
	if len(got) != 4 {
		t.Errorf("receivers got %d recipients (%v), want 4", len(got), got)
	}
	// The records and the counters tell the same story.
	for typ, series := range map[logrec.Type]string{logrec.Delivery: "gannet_messages_delivered_total",
		logrec.TransientFailure: "gannet_messages_transient_failures_total", logrec.Bounce: "gannet_messages_bounced_total"} {
		if float64(counts[typ]) != s.get(t, series) {
			t.Errorf("%d %s records, %s = %v", counts[typ], typ, series, s.get(t, series))
		}
	}
}

// saveScrape keeps the final scrape: in the data dir, in $GANNET_METRICS_OUT
// when set, and in the test log with -v.
func saveScrape(t *testing.T, g *gannet, text string) {
	t.Helper()
	paths := []string{filepath.Join(g.Dir, "metrics.txt")}
	if p := os.Getenv("GANNET_METRICS_OUT"); p != "" {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Errorf("saving the scrape: %v", err)
		}
	}
	if testing.Verbose() {
		var b strings.Builder
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "gannet_") || strings.HasPrefix(l, "# TYPE gannet_") {
				b.WriteString(l + "\n")
			}
		}
		t.Logf("/metrics after the run (gannet_* only; full scrape in %s):\n%s", paths[len(paths)-1], b.String())
	}
}
