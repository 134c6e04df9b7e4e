package e2e

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestE2ETuneFindsHiddenRate: bench/smtpsink plays a provider with a
// hidden rate of 20 messages a second (past it, MAIL gets "421 4.7.28"),
// behind a configured ceiling of 100/s with tune = true. smtpblast keeps
// more mail coming than the site takes for 30 s. Gannet's tuned rate for
// the site comes down from the ceiling and, over the last 12 s, stays
// near the hidden rate (its median within 20% below it, no sample past
// it by more than 15%) while the sink throttles few of the attempts;
// `gannet queue summary` and the admin API show the learned rate and why
// it moved; after a restart, the learned rate is back at once, before any
// traffic.
func TestE2ETuneFindsHiddenRate(t *testing.T) {
	const (
		hidden  = 20.0 // the sink's hidden rate, per second
		ceiling = 100.0
		site    = "mx.d1.test"
		run     = 30 * time.Second
		settled = 12 * time.Second // the last part of the run, measured
	)
	g, sp, sinkHTTP := tuningSite(t, fmt.Sprintf("max_message_rate = \"%d/s\"", int(ceiling)),
		"-throttle", fmt.Sprintf("%d/s:%s", int(hidden), unusualRate))
	blast := startBlast0(t, g.SMTPAddr, run)
	metric := `gannet_site_tuned_rate{site="` + site + `"}`
	untilSettled(t, g, metric, run, settled, func(v float64) bool { return v < ceiling })
	before := sinkStats(t, sinkHTTP)
	var samples []float64
	for end := time.Now().Add(settled); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		samples = append(samples, scrapeMetrics(t, g.HTTPAddr).values[metric])
	}
	after := sinkStats(t, sinkHTTP)
	blast.wait(t)

	sorted, median, top := sortedSamples(samples)
	took, throttled := after.Messages-before.Messages, after.Throttled-before.Throttled
	share := float64(throttled) / float64(max(1, took+throttled))
	t.Logf("hidden %v/s: tuned rate over the last %v: median %.1f, range [%.1f, %.1f]; sink took %.1f/s, throttled %d of %d (%.1f%%)",
		hidden, settled, median, sorted[0], top, float64(took)/settled.Seconds(), throttled, took+throttled, share*100)
	// The unit test (engine/shaping) holds every sample within 15% below;
	// here, with real timing on a shared machine, the median within 20%.
	if median < 0.80*hidden || median > hidden {
		t.Errorf("median tuned rate %.1f/s, want within 20%% below the hidden %v/s", median, hidden)
	}
	if top > 1.15*hidden {
		t.Errorf("tuned rate went up to %.1f/s once settled, past the hidden %v/s by more than 15%%", top, hidden)
	}
	if share > 0.10 {
		t.Errorf("the sink throttled %.1f%% of the attempts once settled, want under 10%%", share*100)
	}

	// What an operator sees.
	summaryShowsTuned(t, g, site, `\s+\d+(\.\d)?/s\s+\S+\s+\S+\s+\S+\s+\S+\s+deferrals \d+\.\d% over \d+s at \d+\.\d/s: (a burst: )?(up|down) .*$`, "rate")
	var sum struct {
		Tuned []struct {
			Site    string    `json:"site"`
			Rate    float64   `json:"rate"`
			Reason  string    `json:"reason"`
			Changed time.Time `json:"changed"`
		} `json:"tuned"`
		Sites []struct {
			Site       string  `json:"site"`
			TunedRate  float64 `json:"tuned_rate"`
			TuneReason string  `json:"tune_reason"`
		} `json:"sites"`
	}
	getJSON(t, "http://"+g.HTTPAddr+"/api/admin/queue-summary/v1", &sum)
	if len(sum.Tuned) != 1 || sum.Tuned[0].Site != site || sum.Tuned[0].Rate <= 0 || sum.Tuned[0].Reason == "" {
		t.Fatalf("queue summary's tuned = %+v, want %s with its rate and reason", sum.Tuned, site)
	}
	learned := sum.Tuned[0]
	for _, s := range sum.Sites {
		if s.Site == site && (s.TunedRate <= 0 || s.TuneReason == "") {
			t.Errorf("site row %+v: want its tuned_rate and tune_reason", s)
		}
	}

	// Kept across a restart: the learned rate is there before any
	// delivery, with the time it was learned.
	g.Stop()
	stopped := time.Now()
	sp.stop()
	g.Restart()
	v, ok := scrapeMetrics(t, g.HTTPAddr).values[metric]
	if !ok || v < 0.5*hidden || v > 1.15*hidden {
		t.Errorf("after a restart %s = %v (present %v), want the rate learned before (about %v)", metric, v, ok, learned.Rate)
	}
	getJSON(t, "http://"+g.HTTPAddr+"/api/admin/queue-summary/v1", &sum)
	if len(sum.Tuned) != 1 || sum.Tuned[0].Changed.After(stopped) {
		t.Errorf("after a restart the queue summary's tuned = %+v, want the state learned before %v", sum.Tuned, stopped)
	}
}

// unusualRate is the text of the sink's throttling reply, Gmail's words.
const unusualRate = "4.7.28 Our system has detected an unusual rate of mail"

// tuneTOML tunes domain1 under a ceiling of ceiling messages a second, in
// windows of 2 s of at least 10 attempts.
func tuneTOML(ceiling float64) string {
	return fmt.Sprintf(`
[shaping.%q]
max_message_rate = "%d/s"
tune = true
tune_window = "2s"
tune_min_attempts = 10
`, domain1, int(ceiling))
}

// summaryShowsTuned checks that `gannet queue summary` has a TUNED SITE
// row for site whose rest matches row (a regular expression), saying
// what in the error.
func summaryShowsTuned(t *testing.T, g *gannet, site, row, what string) {
	t.Helper()
	out, errOut, code := runGannetCLI(t, g, "queue", "summary")
	rowRE := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(site) + row)
	if code != 0 || !strings.Contains(out, "TUNED SITE") || !rowRE.MatchString(out) {
		t.Errorf("gannet queue summary (exit %d) does not show %s's tuned %s and why:\n%s%s", code, site, what, out, errOut)
	}
}

// tuningSite starts bench/smtpsink with sinkArgs as domain1's MX (its
// stats at the address returned) and a gannet whose [shaping."d1.test"]
// table holds limit (a TOML line) and tunes in 2s windows of at least 10
// attempts, retrying every second or two.
func tuningSite(t *testing.T, limit string, sinkArgs ...string) (*gannet, *proc, string) {
	t.Helper()
	w := newRelayWorld(t)
	sinkHTTP := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	sinkAddr := hostPort(mxIP1, w.port)
	sp := startProc(t, smtpsinkBinary(t), append([]string{"-listen", sinkAddr, "-quiet", "-http", sinkHTTP}, sinkArgs...)...)
	waitBanner(t, sinkAddr, sp, receiverStartMax)
	g := w.gannet(t, gannetConfig{RetryInterval: "1s", MaxRetryInterval: "2s", TLSMode: "disabled", Extra: fmt.Sprintf(`
[shaping.%q]
%s
tune = true
tune_window = "2s"
tune_min_attempts = 10
`, domain1, limit)})
	return g, sp, sinkHTTP
}

// untilSettled waits (within half the run) for metric to be learned (ok),
// then until the last settled part of a run that started now.
func untilSettled(t *testing.T, g *gannet, metric string, run, settled time.Duration, ok func(float64) bool) {
	t.Helper()
	start := time.Now()
	waitFor(t, run/2, "a learned "+metric, func() (bool, string) {
		v, have := scrapeMetrics(t, g.HTTPAddr).values[metric]
		return have && ok(v), fmt.Sprintf("%s = %v", metric, v)
	})
	if d := run - settled - time.Since(start); d > 0 {
		time.Sleep(d)
	}
}

// sortedSamples returns the samples sorted, their median and their top.
func sortedSamples(samples []float64) (sorted []float64, median, top float64) {
	sorted = append([]float64(nil), samples...)
	sort.Float64s(sorted)
	return sorted, sorted[len(sorted)/2], sorted[len(sorted)-1]
}

// startBlast0 runs smtpblast for d at 60 messages a second (more than the
// sites of the tuning tests take) to domain1, one recipient each.
func startBlast0(t *testing.T, server string, d time.Duration) *blastRun {
	t.Helper()
	dir := t.TempDir()
	p := startProc(t, blastBinary(t), "-server", server, "-connections", "4", "-rate", "60/s", "-duration", d.String(), "-messages", "2000",
		"-domains", domain1, "-size", "1k", "-json", "-progress", "0")
	return &blastRun{p: p, ids: dir + "/none", name: "tune"}
}

// sinkStatsV is what smtpsink's -http serves at /stats.
type sinkStatsV struct {
	Messages           uint64 `json:"messages"`
	Throttled          uint64 `json:"throttled"`
	RefusedConns       uint64 `json:"refused_connections"`
	MaxConcurrentConns int64  `json:"max_concurrent_connections"`
}

func sinkStats(t *testing.T, addr string) sinkStatsV {
	t.Helper()
	var s sinkStatsV
	getJSON(t, "http://"+addr+"/stats", &s)
	return s
}
