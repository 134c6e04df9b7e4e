package grafana

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gannet/engine/metrics"
)

func load(t *testing.T) *Dashboard {
	t.Helper()
	d, err := Load("gannet.json")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDashboardShape: what Grafana needs to import the file and show every
// panel: unique ids, a place on the grid, the data source variable on
// every query panel, a refId and a query on every target, and the
// datasource, job and instance variables.
func TestDashboardShape(t *testing.T) {
	d := load(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q", d.Title, d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("variable %s: type %q, want %q", name, vars[name], typ)
		}
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.AllPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %q (refId used twice or empty query)", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.Contains(tg.Expr, "gannet_") && !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: %s does not filter by $instance", p.Title, tg.Expr)
			}
			queries++
		}
	}
	if queries < 30 {
		t.Errorf("only %d queries", queries)
	}
}

// TestDashboardQueriesParse has Prometheus' own parser (promtool check
// rules) read every query, as recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("PEER MISSING: promtool (Debian package prometheus)")
		}
		t.Skip("!!! promtool not installed (Debian package prometheus)")
	}
	qs := load(t).Queries(map[string]string{"job": ".*", "instance": ".*"}, "1m")
	var b strings.Builder
	b.WriteString("groups:\n- name: dashboard\n  rules:\n")
	for i, q := range qs {
		fmt.Fprintf(&b, "  - record: dashboard:query%d\n    expr: %q\n", i, q.Expr)
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(qs)); !strings.Contains(string(out), want) {
		t.Errorf("promtool: %s (want %q)", out, want)
	}
}

// TestDashboardNamesExportedMetrics: every gannet_* series a query reads
// is one engine/metrics writes, with the labels the query groups or
// filters it by, so a renamed metric or label cannot leave a panel empty.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	m := metrics.New()
	m.Received("relay-in").Inc()
	m.ObserveDeliveryLatency(time.Unix(0, 0), time.Unix(1, 0))
	m.SpoolCommit.Update(0.001)
	m.BounceClass("InvalidRecipient").Inc()
	m.TransientClass("TransientFailure").Inc()
	m.TLSHandshakesOut(true).Inc()
	m.Sites.Inc("mx.d.example", metrics.OutcomeDelivered)
	m.Domains.Inc("d.example", metrics.OutcomeDelivered)
	m.Tenants.Inc("acme", metrics.OutcomeDelivered)
	m.Campaigns.Inc("spring", metrics.OutcomeDelivered)
	m.SetDestinations(func() metrics.DestinationState {
		g := []metrics.DestinationGauge{{Name: "d.example", Connections: 1, QueueDepth: 1}}
		return metrics.DestinationState{Sites: g, Domains: g}
	})
	m.SetSiteRates(func() []metrics.SiteRate { return []metrics.SiteRate{{Site: "mx.d.example", Rate: 1}} })
	m.SetSiteTuned(func() []metrics.SiteTuned { return []metrics.SiteTuned{{Site: "mx.d.example", Rate: 1, Conns: 2}} })
	m.RedisCall("rate")
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	labels := map[string]map[string]bool{} // family → label names seen
	for _, l := range strings.Split(buf.String(), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(strings.Fields(l)[0], "{")
		if labels[name] == nil {
			labels[name] = map[string]bool{}
		}
		for _, kv := range regexp.MustCompile(`([a-z_]+)="`).FindAllStringSubmatch(rest, -1) {
			labels[name][kv[1]] = true
		}
	}
	name := regexp.MustCompile(`\b(gannet_[a-z_]+)\{([^}]*)\}`)
	by := regexp.MustCompile(`by \(([a-z_, ]+)\)`)
	for _, q := range load(t).Queries(map[string]string{"job": ".*", "instance": ".*"}, "1m") {
		for _, m := range name.FindAllStringSubmatch(q.Expr, -1) {
			fam := m[1]
			if labels[fam] == nil {
				t.Errorf("panel %q reads %s, which /metrics does not export", q.Panel, fam)
				continue
			}
			for _, kv := range regexp.MustCompile(`([a-z_]+)=~?"`).FindAllStringSubmatch(m[2], -1) {
				if l := kv[1]; l != "job" && l != "instance" && !labels[fam][l] {
					t.Errorf("panel %q filters %s by %s, a label it does not have", q.Panel, fam, l)
				}
			}
			for _, g := range by.FindAllStringSubmatch(q.Expr, -1) {
				for _, l := range strings.Split(g[1], ",") {
					l = strings.TrimSpace(l)
					if l != "le" && l != "job" && l != "instance" && !labels[fam][l] && !anyHas(labels, q.Expr, l) {
						t.Errorf("panel %q groups by %s, which no series it reads has", q.Panel, l)
					}
				}
			}
		}
	}
}

// anyHas reports whether some gannet_* family named in expr has label l
// (a query like a ratio reads several families).
func anyHas(labels map[string]map[string]bool, expr, l string) bool {
	for fam, ls := range labels {
		if strings.Contains(expr, fam+"{") && ls[l] {
			return true
		}
	}
	return false
}
