package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2EBackoffMode: bench/smtpsink plays a provider that answers the
// first 40 recipients "421 4.7.28" and then recovers. Gannet counts the
// deferrals of d1.test's site: past backoff_min_attempts at a deferral rate
// above 0.3, the site goes into backoff — a BackoffStart record with the
// rate as reason, gannet_site_backoff 1, the site's effective rate
// backoff_rate, `gannet queue summary` and the admin API showing it — and
// attempts go no faster than backoff_rate; once the sink accepts again,
// backoff_to_normal_after_deliveries deliveries return the site to normal
// (BackoffEnd, gauge 0), and every message is delivered.
func TestE2EBackoffMode(t *testing.T) {
	const (
		messages   = 60
		deferrals  = 40
		rate       = 2.0 // backoff_rate, per second
		toNormal   = 10  // backoff_to_normal_after_deliveries
		site       = "mx.d1.test"
		connLimit  = 10 // the default connection_limit: transactions in flight when backoff begins
		waitRecord = 90 * time.Second
	)
	w := newRelayWorld(t)
	startGoSink(t, hostPort(mxIP1, w.port), fmt.Sprintf("rcpt~@%s:421:#%d:4.7.28 Too many messages, slow down", domain1, deferrals))
	g := w.gannet(t, gannetConfig{RetryInterval: "1s", MaxRetryInterval: "2s", Extra: fmt.Sprintf(`
[shaping.%q]
backoff_on_deferral_rate = 0.3
backoff_window = "5m"
backoff_min_attempts = 10
backoff_rate = "%g/s"
backoff_retry_after = "2s"
backoff_to_normal_after = "10m"
backoff_to_normal_after_deliveries = %d
`, domain1, rate, toNormal)})

	c := dialSMTP(t, "", g.SMTPAddr)
	for i := range messages {
		rcpt := fmt.Sprintf("user%d@%s", i, domain1)
		acceptedID(t, c.Send(senderAddr, []string{rcpt}, simpleMessage(senderAddr, rcpt, fmt.Sprintf("backoff %d", i), "Slow down.\n")))
	}
	c.Quit()

	start := g.WaitRecords(recordFilter{Type: "BackoffStart"}, 1, waitRecord)[0]
	reasonRE := regexp.MustCompile(`^deferral rate (\d\.\d\d) over 5m \((\d+)/(\d+)\)$`)
	m := reasonRE.FindStringSubmatch(start.Reason)
	if start.Site != site || m == nil {
		t.Fatalf("BackoffStart %s: want site %s and the reason \"deferral rate R over 5m (D/A)\"", start.Raw, site)
	}
	if d, _ := strconv.Atoi(m[2]); d < 10 {
		t.Errorf("BackoffStart after %s deferrals, fewer than backoff_min_attempts (10): %s", m[2], start.Raw)
	}

	// In backoff: what an operator sees. The sink still defers (the
	// deferrals left keep the site in backoff: each throttling reply
	// starts the count of deliveries again).
	sc := scrapeMetrics(t, g.HTTPAddr)
	if v := sc.get(t, `gannet_site_backoff{site="`+site+`"}`); v != 1 {
		t.Errorf("gannet_site_backoff{site=%q} = %v in backoff, want 1", site, v)
	}
	if v := sc.get(t, `gannet_site_effective_rate{site="`+site+`",source=""}`); v != rate {
		t.Errorf("gannet_site_effective_rate of %s = %v in backoff, want backoff_rate %v", site, v, rate)
	}
	out, errOut, code := runGannetCLI(t, g, "queue", "summary")
	lineRE := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(site) + `\s+\S+\s+\S+\s+\d+/` + strconv.Itoa(toNormal) +
		`\s+2\.0/s\s+2s\s+` + regexp.QuoteMeta(start.Reason) + `\s*$`)
	if code != 0 || !strings.Contains(out, "BACKOFF SITE") || !lineRE.MatchString(out) {
		t.Errorf("gannet queue summary (exit %d) does not show %s in backoff with its reason:\n%s%s", code, site, out, errOut)
	}
	var view struct {
		Sites []struct {
			Site, Origin, Reason string
			Until                *time.Time
		} `json:"sites"`
	}
	getJSON(t, "http://"+g.HTTPAddr+"/api/admin/backoff/v1?site="+site, &view)
	if len(view.Sites) != 1 || view.Sites[0].Origin != "deferral-rate" || view.Sites[0].Reason != start.Reason || view.Sites[0].Until == nil {
		t.Errorf("GET /api/admin/backoff/v1?site=%s: %+v", site, view)
	}

	end := g.WaitRecords(recordFilter{Type: "BackoffEnd"}, 1, waitRecord)[0]
	if end.Site != site || end.Reason != fmt.Sprintf("after %d deliveries", toNormal) {
		t.Errorf("BackoffEnd %s: want site %s, \"after %d deliveries\"", end.Raw, site, toNormal)
	}
	recs := g.WaitRecords(recordFilter{Type: "Delivery"}, messages, waitRecord)
	if len(recs) != messages {
		t.Errorf("%d Delivery records, want %d (one per message)", len(recs), messages)
	}

	// While in backoff, attempts went at backoff_rate at most: the
	// transactions in flight when it began, then rate per second.
	t0, t1 := start.Unix(t), end.Unix(t)
	attempts := 0
	for _, r := range g.Records() {
		if (r.Type == "Delivery" || r.Type == "TransientFailure") && r.Site == site {
			if ts := r.Unix(t); ts > t0 && ts < t1 {
				attempts++
			}
		}
	}
	if most := int(rate*float64(t1-t0)) + connLimit + 1; attempts > most {
		t.Errorf("%d attempts within the %d s of backoff, more than backoff_rate allows (%d)", attempts, t1-t0, most)
	}
	t.Logf("backoff lasted %d s with %d attempts inside it (backoff_rate %g/s)", t1-t0, attempts, rate)

	sc = scrapeMetrics(t, g.HTTPAddr)
	if v := sc.get(t, `gannet_site_backoff{site="`+site+`"}`); v != 0 {
		t.Errorf("gannet_site_backoff{site=%q} = %v after BackoffEnd, want 0", site, v)
	}
	if out, _, _ := runGannetCLI(t, g, "queue", "summary"); strings.Contains(out, "BACKOFF SITE") {
		t.Errorf("gannet queue summary still shows a backoff:\n%s", out)
	}
}

// getJSON GETs url and decodes its JSON answer (200 wanted).
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestE2EClusterSharedBackoff: two gannet processes sharing one
// redis-server; a reply matching a shaping rule with action "backoff" on
// node-a puts the site in backoff there and, through the cluster, on
// node-b (its own BackoffStart record, its gauge, its admin view, the
// same reason); an operator ending it on node-b (gannet backoff -end)
// ends it on node-a (BackoffEnd "ended on another node").
func TestE2EClusterSharedBackoff(t *testing.T) {
	srv := startRedis(t)
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
		"rcpt:421:#1:4.7.28 Our system has detected an unusual rate of mail")
	site := sink.addr() // the relay_to smarthost's site
	node := func(id string) *gannet {
		return startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
			DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()), Extra: fmt.Sprintf(`
[shaping.default]
backoff_rate = "1/s"
backoff_to_normal_after = "10m"

[[shaping_rule]]
regex = "unusual rate"
action = "backoff"

[cluster]
redis = %q
node_id = %q
key_prefix = "e2e-backoff:"
`, srv.URL(0), id)})
	}
	a, b := node("node-a"), node("node-b")
	injectSimple(t, a, "user@slow.example", "", "", "throttled on node-a")
	startA := a.WaitRecords(recordFilter{Type: "BackoffStart"}, 1, deliveryMax)[0]
	if startA.Site != site || startA.Reason != "421 4.7.28 Our system has detected an unusual rate of mail" {
		t.Fatalf("BackoffStart on node-a %s: want site %s and the reply as reason", startA.Raw, site)
	}
	startB := b.WaitRecords(recordFilter{Type: "BackoffStart"}, 1, 10*time.Second)[0]
	if startB.Site != site || startB.Reason != startA.Reason {
		t.Errorf("BackoffStart on node-b %s, want node-a's site and reason", startB.Raw)
	}
	var view struct {
		Sites []struct{ Site, Origin, Reason string } `json:"sites"`
	}
	getJSON(t, "http://"+b.HTTPAddr+"/api/admin/backoff/v1", &view)
	if len(view.Sites) != 1 || view.Sites[0].Site != site || view.Sites[0].Origin != "rule" {
		t.Errorf("node-b's backoff view %+v, want node-a's backoff of %s", view, site)
	}
	if v := scrapeMetrics(t, b.HTTPAddr).get(t, `gannet_site_backoff{site="`+site+`"}`); v != 1 {
		t.Errorf("node-b's gannet_site_backoff = %v, want 1", v)
	}

	if out, errOut, code := runGannetCLI(t, b, "backoff", "-end", site); code != 0 {
		t.Fatalf("gannet backoff -end on node-b: %d %s%s", code, out, errOut)
	}
	endA := a.WaitRecords(recordFilter{Type: "BackoffEnd"}, 1, 10*time.Second)[0]
	if endA.Site != site || endA.Reason != "ended on another node" {
		t.Errorf("BackoffEnd on node-a %s, want \"ended on another node\"", endA.Raw)
	}
	if endB := b.WaitRecords(recordFilter{Type: "BackoffEnd"}, 1, 10*time.Second)[0]; endB.Reason != "ended by an operator" {
		t.Errorf("node-b's BackoffEnd %s, want \"ended by an operator\"", endB.Raw)
	}
	// The message deferred on node-a is delivered.
	waitFor(t, deliveryMax, "the deferred message at the sink", func() (bool, string) {
		return findArrival(sink.arrivals(t), "user@slow.example") != nil, ""
	})
}

// TestE2EBackoffSurvivesRestart: a site put in backoff by a shaping rule
// is still in backoff after gannet is stopped and started again on the
// same spool — same reason, start and end in the admin API, the gauge at
// 1 — without a second BackoffStart record.
func TestE2EBackoffSurvivesRestart(t *testing.T) {
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
		"rcpt:421:#1:4.7.0 [TS03] Messages from this host are temporarily deferred")
	site := sink.addr()
	g := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()), Extra: `
[shaping.default]
backoff_rate = "10/m"
backoff_to_normal_after = "1h"

[[shaping_rule]]
regex = "\\[TS03\\]"
action = "backoff"
`})
	injectSimple(t, g, "user@slow.example", "", "", "throttled")
	g.WaitRecords(recordFilter{Type: "BackoffStart"}, 1, deliveryMax)
	type view struct {
		Sites []struct {
			Site, Reason string
			Since        time.Time
			Until        *time.Time
		} `json:"sites"`
	}
	var before, after view
	getJSON(t, "http://"+g.HTTPAddr+"/api/admin/backoff/v1", &before)
	if len(before.Sites) != 1 || before.Sites[0].Site != site || before.Sites[0].Until == nil {
		t.Fatalf("backoff before the restart: %+v", before)
	}

	t0 := time.Now()
	g.Stop()
	t.Logf("stopped in %v", time.Since(t0))
	g.Restart()
	t.Logf("restarted in %v", time.Since(t0))
	getJSON(t, "http://"+g.HTTPAddr+"/api/admin/backoff/v1", &after)
	if len(after.Sites) != 1 || after.Sites[0].Site != site || after.Sites[0].Reason != before.Sites[0].Reason ||
		!after.Sites[0].Since.Equal(before.Sites[0].Since) || after.Sites[0].Until == nil ||
		!after.Sites[0].Until.Equal(*before.Sites[0].Until) {
		t.Fatalf("backoff after the restart: %+v, want %+v", after, before)
	}
	if v := scrapeMetrics(t, g.HTTPAddr).get(t, `gannet_site_backoff{site="`+site+`"}`); v != 1 {
		t.Errorf("gannet_site_backoff after the restart = %v, want 1", v)
	}
	// The deferred message still goes (at backoff_rate), and the restart
	// wrote no second BackoffStart.
	g.WaitRecords(recordFilter{Type: "Delivery"}, 1, deliveryMax)
	t.Logf("delivered %v after the stop", time.Since(t0))
	if recs := selectRecords(g.Records(), recordFilter{Type: "BackoffStart"}); len(recs) != 1 {
		t.Errorf("%d BackoffStart records, want 1: %s", len(recs), summarize(recs))
	}
}
