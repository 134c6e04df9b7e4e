package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestE2ETuneFindsConnectionLimit: bench/smtpsink plays a site that takes
// 4 connections at once (-max-conns 4: the fifth gets "421 4.7.0 Too many
// connections") and answers each message after 100ms, behind a configured
// connection_limit of 8 with tune = true. smtpblast keeps more mail
// coming than 4 connections carry for 36 s. Gannet's tuned connection
// count starts at 2, climbs, is refused at 5 and, over the last 16 s,
// stays at 4 (5 at most, while it tries 5 again) without sustained
// refusals: the sink refuses connections in few of those seconds.
// `gannet queue summary`, the admin API and gannet_site_tuned_connections
// show the count, the count the sink refused at and why it moved, and a
// restart keeps it.
func TestE2ETuneFindsConnectionLimit(t *testing.T) {
	const (
		hidden  = 4 // the sink's connection limit
		ceiling = 8
		site    = "mx.d1.test"
		run     = 36 * time.Second
		settled = 16 * time.Second // the last part of the run, measured
	)
	g, sp, sinkHTTP := tuningSite(t, fmt.Sprintf("connection_limit = %d", ceiling),
		"-max-conns", fmt.Sprint(hidden), "-delay", "dot:100ms")
	blast := startBlast0(t, g.SMTPAddr, run)
	metric := `gannet_site_tuned_connections{site="` + site + `"}`
	untilSettled(t, g, metric, run, settled, func(v float64) bool { return v > 0 })
	var samples []float64
	refusing, seconds := 0, 0
	prev := sinkStats(t, sinkHTTP)
	for end := time.Now().Add(settled); time.Now().Before(end); {
		time.Sleep(time.Second)
		samples = append(samples, scrapeMetrics(t, g.HTTPAddr).values[metric])
		cur := sinkStats(t, sinkHTTP)
		if cur.RefusedConns > prev.RefusedConns {
			refusing++
		}
		seconds++
		prev = cur
	}
	blast.wait(t)

	sorted, median, top := sortedSamples(samples)
	t.Logf("hidden %d connections: tuned count over the last %v: median %v, range [%v, %v]; the sink refused connections in %d of %d seconds (max concurrent %d)",
		hidden, settled, median, sorted[0], top, refusing, seconds, prev.MaxConcurrentConns)
	if median != hidden {
		t.Errorf("median tuned connection count %v once settled, want %d", median, hidden)
	}
	if top > hidden+1 {
		t.Errorf("tuned connection count went up to %v once settled, past the sink's %d by more than one", top, hidden)
	}
	if refusing > seconds/4 {
		t.Errorf("the sink refused connections in %d of %d seconds once settled, want at most a quarter", refusing, seconds)
	}

	// What an operator sees.
	summaryShowsTuned(t, g, site, `\s+\S+\s+\S+\s+[45]\s+5\s+\S+\s+.*conns: .*(connections|windows).*$`, "connections")
	var sum struct {
		Tuned []struct {
			Site        string `json:"site"`
			Connections int    `json:"connections"`
			RefusedAt   int    `json:"connections_refused_at"`
			Reason      string `json:"connections_reason"`
		} `json:"tuned"`
		Sites []struct {
			Site             string `json:"site"`
			Connections      int    `json:"connections"`
			TunedConnections int    `json:"tuned_connections"`
		} `json:"sites"`
	}
	getJSON(t, "http://"+g.HTTPAddr+"/api/admin/queue-summary/v1", &sum)
	if len(sum.Tuned) != 1 || sum.Tuned[0].Site != site || sum.Tuned[0].Connections < hidden || sum.Tuned[0].Connections > hidden+1 ||
		sum.Tuned[0].RefusedAt != hidden+1 || sum.Tuned[0].Reason == "" {
		t.Fatalf("queue summary's tuned = %+v, want %s with %d connections (%d while trying), refused at %d, and why",
			sum.Tuned, site, hidden, hidden+1, hidden+1)
	}
	learned := sum.Tuned[0].Connections
	for _, s := range sum.Sites {
		if s.Site == site && (s.TunedConnections != learned || s.Connections != learned) {
			t.Errorf("site row %+v: want %d tuned connections, in force", s, learned)
		}
	}

	// Kept across a restart, before any delivery (the queued mail may
	// have seen one more try of 5 since).
	g.Stop()
	sp.stop()
	g.Restart()
	if v, ok := scrapeMetrics(t, g.HTTPAddr).values[metric]; !ok || v < hidden || v > hidden+1 {
		t.Errorf("after a restart %s = %v (present %v), want what was learned before (%d, or %d while trying)", metric, v, ok, hidden, hidden+1)
	}
}
