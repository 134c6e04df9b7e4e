package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gannet/deploy/grafana"
)

// promServer is a real Prometheus (Debian's prometheus) scraping one
// Gannet every second, started and stopped by the test.
type promServer struct {
	addr string
}

func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin := needExecutable(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: gannet\n  static_configs:\n  - targets: ['%s']\n", target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	startProc(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p := &promServer{addr: addr}
	waitFor(t, 30*time.Second, "prometheus to scrape gannet", func() (bool, string) {
		res, err := p.query(`up{job="gannet"}`)
		if err != nil {
			return false, err.Error()
		}
		return len(res) == 1 && res[0].Value[1] == "1", fmt.Sprintf("up = %v", res)
	})
	return p
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query; a PromQL error is an error.
func (p *promServer) query(q string) ([]promSample, error) {
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, ans.Error)
	}
	return ans.Data.Result, nil
}

// TestE2EGrafanaDashboard: a live Gannet with mail flowing (tenants and
// campaigns, a deferral then delivery, a bounce) is scraped by a real
// Prometheus, which then runs every query of deploy/grafana/gannet.json
// as Grafana would (variables "All", $__rate_interval = 1m): each must
// parse and return data, so no panel of the dashboard is empty or broken
// against the metrics Gannet really exports.
//
// The same Gannet runs with [metrics] compat = "kumomta": the queries a
// KumoMTA dashboard makes for queue depth, delivery latency p95,
// delivery failures, connections per destination and message counts
// return data under KumoMTA's names, equal to Gannet's own.
//
// The Gannet is a node of a cluster (one redis-server), so that the
// cluster panels have data too. Only the panels of what a self-tuning
// site learned (gannet_site_tuned_*, which takes windows of deferrals to
// appear: TestE2ETuneConns reads it) are left to parse without data.
func TestE2EGrafanaDashboard(t *testing.T) {
	dash, err := grafana.Load("../deploy/grafana/gannet.json")
	if err != nil {
		t.Fatal(err)
	}
	w := newRelayWorld(t)
	startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{TempfailFirst: "451 4.3.0 try again later"})
	startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{FailRcpt: "550 5.1.1 no such user here"})
	// d3.test defers every attempt, so the queue panels have mail to show.
	startAiosmtpd(t, hostPort(mxIP3, w.port), aioOptions{FailRcpt: "451 4.7.0 come back later"})
	srv := startRedis(t)
	g := w.gannet(t, gannetConfig{Extra: "[metrics]\ncompat = \"kumomta\"\n" + clusterTOML(srv, "node-a")})
	prom := startPrometheus(t, g.HTTPAddr)

	meta := func(tenant, campaign string) []byte {
		return []byte("X-Tenant: " + tenant + "\r\nX-Campaign: " + campaign + "\r\n")
	}
	r1, r2, r3 := "a@"+domain1, "nobody@"+domain2, "later@"+domain3
	res := smtplibSend(t, g.SMTPAddr, []pyMessage{
		{From: senderAddr, To: []string{r1}, Data: append(meta("acme", "spring"), simpleMessage(senderAddr, r1, "deferred once", "Hello.\n")...)},
		{From: senderAddr, To: []string{r2}, Data: append(meta("beta", "summer"), simpleMessage(senderAddr, r2, "bounced", "Hello.\n")...)},
		{From: senderAddr, To: []string{r3}, Data: append(meta("beta", "summer"), simpleMessage(senderAddr, r3, "deferred", "Hello.\n")...)},
	})
	g.WaitRecords(recordFilter{Type: "Delivery", ID: acceptedID(t, res[0].Data)}, 1, deliveryMax)
	g.WaitRecords(recordFilter{Type: "Bounce", ID: acceptedID(t, res[1].Data)}, 1, deliveryMax)
	g.WaitRecords(recordFilter{Type: "TransientFailure", ID: acceptedID(t, res[2].Data)}, 1, deliveryMax)

	queries := dash.Queries(map[string]string{"job": ".*", "instance": ".*"}, "1m")
	// Series born with the last deliveries need two scrapes before rate()
	// has an answer: wait until every query has data, then check.
	var empty []string
	waitFor(t, 30*time.Second, "every dashboard query to return data", func() (bool, string) {
		empty = empty[:0]
		for _, q := range queries {
			r, err := prom.query(q.Expr)
			if err != nil {
				t.Fatalf("panel %q %s: %v", q.Panel, q.RefID, err)
			}
			if len(r) == 0 && !strings.Contains(q.Expr, "gannet_site_tuned_") {
				empty = append(empty, q.Panel+" "+q.RefID)
			}
		}
		return len(empty) == 0, fmt.Sprintf("no data: %s", strings.Join(empty, "; "))
	})
	t.Logf("%d dashboard queries, each answered with data but those of gannet_site_tuned_*", len(queries))

	// Values, not just presence: what the dashboard shows is what happened.
	value := func(q string) float64 {
		t.Helper()
		r, err := prom.query(q)
		if err != nil || len(r) != 1 {
			t.Fatalf("%s: %v %v", q, r, err)
		}
		s, _ := r[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: value %q", q, s)
		}
		return v
	}
	for q, want := range map[string]float64{
		`sum(gannet_messages_delivered_total)`:                           1,
		`sum(gannet_messages_bounced_total)`:                             1,
		`sum(gannet_tenant_messages_delivered_total{tenant="acme"})`:     1,
		`sum(gannet_campaign_messages_bounced_total{campaign="summer"})`: 1,
		`sum(gannet_bounces_total{class="InvalidRecipient"})`:            1,
		`sum(gannet_domain_queue_depth{domain="d3.test"})`:               1,
		`sum(total_messages_received)`:                                   3,
	} {
		if got := value(q); got != want {
			t.Errorf("%s = %v, want %v", q, got, want)
		}
	}
	if n := value(`sum(gannet_messages_transient_failures_total)`); n < 2 {
		t.Errorf("%v transient failures, want ≥ 2 (d1.test once, d3.test each attempt)", n)
	}
	// Each KumoMTA series equals the Gannet one it stands for: one query,
	// one instant, one scrape.
	for _, q := range []string{
		`sum(total_messages_delivered{service=~"smtp_client:.*"}) - sum(gannet_site_messages_delivered_total)`,
		`sum(total_messages_fail{service=~"smtp_client:.*"}) - sum(gannet_site_messages_bounced_total)`,
		`sum(total_messages_transfail{service=~"smtp_client:.*"}) - sum(gannet_site_messages_transient_failures_total)`,
		`sum(deliver_message_latency_rollup_count{service="smtp_client"}) - sum(gannet_delivery_latency_seconds_count)`,
		`sum(total_messages_received) - sum(gannet_messages_received_total)`,
		`sum(message_count) - sum(gannet_queue_depth{queue=~"scheduled|ready"})`,
		`sum(scheduled_count_total) - sum(gannet_queue_depth{queue="scheduled"})`,
		`sum(scheduled_by_domain{domain="d3.test"}) - sum(gannet_domain_queue_depth{domain="d3.test"})`,
	} {
		if got := value(q); got != 0 {
			t.Errorf("%s = %v, want 0", q, got)
		}
	}
	// The queries of a KumoMTA dashboard (its names, its labels) answer.
	for _, q := range []string{
		`sum(scheduled_count)`,
		`sum by (service) (ready_count)`,
		`histogram_quantile(0.95, sum by (le) (rate(deliver_message_latency_rollup_bucket[1m])))`,
		`sum(rate(total_messages_transfail[1m])) + sum(rate(total_messages_fail[1m]))`,
		`sum by (service) (connection_count{service=~"smtp_client:.*"})`,
		`sum(total_connection_count)`,
		`sum(smtp_server_rejections)`,
		`memory_usage`,
	} {
		if r, err := prom.query(q); err != nil || len(r) == 0 {
			t.Errorf("KumoMTA query %s: %v %v", q, r, err)
		}
	}
}
