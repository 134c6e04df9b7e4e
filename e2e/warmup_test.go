package e2e

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestE2EWarmupOverflow: two egress sources on 127.0.0.7 and 127.0.0.8 in
// tenant acme's pool, the first warming with a day-1 allowance of 3 messages (and
// nearly all the pool's weight). Of 10 messages the receiver, which
// records the client address, gets exactly 3 from 127.0.0.7 and the other
// 7 from 127.0.0.8; gannet queue summary, the admin API and
// gannet_egress_warmup_remaining show the allowance used up. A tenant
// whose pool holds only a warming source (127.0.0.9, allowance 2) gets 2
// of its 4 messages delivered; the other 2 wait for the next day: queued,
// neither bounced nor deferred, and still wait after kill -9 and a restart, which
// keeps the start date and the day's counts.
func TestE2EWarmupOverflow(t *testing.T) {
	const (
		sent    = 10
		allowed = 3
	)
	w := newRelayWorld(t)
	for _, ip := range []string{"127.0.0.7", "127.0.0.8", "127.0.0.9"} {
		checkLoopbackAlias(t, ip)
	}
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	g := w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: warmupPoolTOML(allowed) + `
[[egress_source]]
name = "solo"
source_address = "127.0.0.9"
warmup = "ramp"
warmup_day1 = [{provider = "default", messages = 2}]

[[egress_pool]]
name = "solo-pool"
sources = [{name = "solo", weight = 1}]

[[tenant]]
name = "solo"
egress_pool = "solo-pool"
`})

	var ids []string
	for i := range sent {
		ids = append(ids, dlvSend(t, g, fmt.Sprintf("u%d@%s", i, domain1), "X-Tenant: acme\r\n"))
	}
	for _, id := range ids {
		g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	}
	from := map[string]int{}
	for _, m := range dlvWaitMessages(t, rcv, sent) {
		from[netip.MustParseAddrPort(m.Peer).Addr().String()]++
	}
	if from["127.0.0.7"] != allowed || from["127.0.0.8"] != sent-allowed || len(from) != 2 {
		t.Fatalf("messages by client address = %v; want %d from the warming 127.0.0.7 and %d from the warm 127.0.0.8", from, allowed, sent-allowed)
	}

	// The tenant whose pool has no warm source: 2 delivered, 2 waiting.
	var soloIDs []string
	for i := range 4 {
		soloIDs = append(soloIDs, dlvSend(t, g, fmt.Sprintf("s%d@%s", i, domain1), "X-Tenant: solo\r\n"))
	}
	waitFor(t, deliveryMax, "2 of tenant solo's messages delivered", func() (bool, string) {
		n := 0
		for _, id := range soloIDs {
			n += len(selectRecords(g.Records(), recordFilter{Type: "Delivery", ID: id}))
		}
		return n == 2, fmt.Sprintf("have %d", n)
	})
	time.Sleep(2 * time.Second) // what else would happen to the waiting two
	for _, id := range soloIDs {
		for _, typ := range []string{"Bounce", "TransientFailure", "Expiration"} {
			if r := selectRecords(g.Records(), recordFilter{Type: typ, ID: id}); len(r) > 0 {
				t.Errorf("tenant solo's message past the allowance: %s record %s; want it to wait", typ, r[0].Raw)
			}
		}
	}
	peers := map[string]int{}
	for _, m := range rcv.Messages() {
		if strings.HasPrefix(m.Rcpts[0], "s") {
			peers[netip.MustParseAddrPort(m.Peer).Addr().String()]++
		}
	}
	if peers["127.0.0.9"] != 2 || len(peers) != 1 {
		t.Errorf("tenant solo's messages by client address = %v, want 2 from 127.0.0.9", peers)
	}
	if s := summaryOf(t, g); s.Totals.Messages != 2 {
		t.Errorf("queue summary: %d message(s) queued, want the 2 waiting for the next day", s.Totals.Messages)
	}

	// What an operator sees.
	sc := scrapeMetrics(t, g.HTTPAddr)
	for _, c := range []struct {
		series string
		want   float64
	}{
		{`gannet_egress_warmup_remaining{source="fresh",provider="default"}`, 0},
		{`gannet_egress_warmup_used{source="fresh",provider="default"}`, allowed},
		{`gannet_egress_warmup_remaining{source="solo",provider="default"}`, 0},
		{`gannet_egress_warmup_used{source="solo",provider="default"}`, 2},
	} {
		if v := sc.get(t, c.series); v != c.want {
			t.Errorf("%s = %v, want %v", c.series, v, c.want)
		}
	}
	out, errOut, code := runGannetCLI(t, g, "queue", "summary")
	today := time.Now().UTC().Format("2006-01-02")
	row := regexp.MustCompile(`(?m)^fresh\s+default\s+` + today + `\s+1\s+3\s+3\s+0\s*$`)
	if code != 0 || !strings.Contains(out, "WARM-UP SOURCE") || !row.MatchString(out) {
		t.Errorf("gannet queue summary (exit %d) does not show fresh's allowance used up:\n%s%s", code, out, errOut)
	}
	var view struct {
		Warmup []struct {
			Source, Provider, Start         string
			Day, Allowance, Used, Remaining int
		}
	}
	adminCurl(t, g, "GET", "/api/admin/queue-summary/v1", "").want(t, "queue summary", 200).decode(t, &view)
	found := false
	for _, r := range view.Warmup {
		if r.Source == "solo" && r.Provider == "default" {
			found = true
			if r.Start != today || r.Day != 1 || r.Allowance != 2 || r.Used != 2 || r.Remaining != 0 {
				t.Errorf("queue summary warmup row of solo = %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("queue summary has no warmup row for solo: %+v", view.Warmup)
	}

	// A restart after kill -9 keeps the start date and the day's counts
	// (kept in the spool): the two waiting messages still wait, nothing
	// more leaves from the warming sources.
	g.Kill9()
	g.Restart()
	time.Sleep(2 * time.Second)
	if n := len(rcv.Messages()); n != sent+2 {
		t.Errorf("after a restart the receiver has %d messages, want still %d", n, sent+2)
	}
	if s := summaryOf(t, g); s.Totals.Messages != 2 {
		t.Errorf("after a restart: %d message(s) queued, want the 2 waiting", s.Totals.Messages)
	}
	out, errOut, code = runGannetCLI(t, g, "queue", "summary")
	if code != 0 || !row.MatchString(out) {
		t.Errorf("after a restart gannet queue summary (exit %d) does not show fresh's allowance used up, started today:\n%s%s", code, out, errOut)
	}
}

// warmupPoolTOML is tenant acme's pool of a warming source "fresh"
// (127.0.0.7, a day-1 allowance of allowed messages to every provider,
// and nearly all the pool's weight) and a warm one, "warm" (127.0.0.8).
func warmupPoolTOML(allowed int) string {
	return fmt.Sprintf(`
[[egress_source]]
name = "fresh"
source_address = "127.0.0.7"
warmup = "ramp"
warmup_day1 = [{provider = "default", messages = %d}]

[[egress_source]]
name = "warm"
source_address = "127.0.0.8"

[[egress_pool]]
name = "main"
sources = [{name = "fresh", weight = 1000}, {name = "warm", weight = 1}]

[[tenant]]
name = "acme"
egress_pool = "main"
`, allowed)
}
