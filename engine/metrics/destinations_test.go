package metrics

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestDestinationGaugesCapAndOther(t *testing.T) {
	m := New()
	m.SetMaxDestinationLabels(2)
	var domains []DestinationGauge
	for i := range 5 {
		domains = append(domains, DestinationGauge{Name: fmt.Sprintf("d%d.test", i), QueueDepth: float64(i * 10), Connections: 1, Rate: 5, HasRate: true})
	}
	m.SetDestinations(func() DestinationState {
		return DestinationState{Domains: append([]DestinationGauge(nil), domains...)}
	})
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	v := checkExposition(t, buf.String())
	want := map[string]float64{
		`gannet_domain_queue_depth{domain="d4.test"}`:    40,
		`gannet_domain_queue_depth{domain="d3.test"}`:    30,
		`gannet_domain_queue_depth{domain="other"}`:      30, // 0+10+20
		`gannet_domain_connections{domain="other"}`:      3,
		`gannet_domain_effective_rate{domain="d4.test"}`: 5,
	}
	for k, w := range want {
		if got, ok := v[k]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, w)
		}
	}
	if _, ok := v[`gannet_domain_effective_rate{domain="other"}`]; ok {
		t.Error("a summed effective rate was written")
	}
	if n := strings.Count(buf.String(), "\ngannet_domain_queue_depth{"); n != 3 {
		t.Errorf("%d queue depth series, want 3", n)
	}
	if strings.Contains(buf.String(), "gannet_site_connections") {
		t.Error("site gauges written without sites")
	}
}

func TestSiteRatesFollowCap(t *testing.T) {
	m := New()
	m.SetMaxDestinationLabels(1)
	m.SetSiteRates(func() []SiteRate {
		return []SiteRate{{Site: "quiet", Rate: 1, Weight: 1}, {Site: "busy", Rate: 2, Weight: 9}, {Site: "idle", Rate: 4}}
	})
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	v := checkExposition(t, buf.String())
	if v[`gannet_site_effective_rate{site="busy",source=""}`] != 2 || v[`gannet_site_effective_rate{site="other",source=""}`] != 5 {
		t.Errorf("site rates: %v", v)
	}
	if n := strings.Count(buf.String(), "\ngannet_site_effective_rate{"); n != 2 {
		t.Errorf("%d site rate series, want 1 named + other", n)
	}
}

// TestSiteBackoffGauge: gannet_site_backoff is 1 for a site in backoff and
// 0 for the others; past the label cap the sites in backoff keep their
// names and the rest are summed under "other".
func TestSiteBackoffGauge(t *testing.T) {
	m := New()
	m.SetMaxDestinationLabels(2)
	m.SetSiteBackoffs(func() []SiteBackoff {
		return []SiteBackoff{{Site: "busy", Weight: 9}, {Site: "slow", Backoff: true}, {Site: "quiet", Weight: 1},
			{Site: "slow2", Backoff: true}, {Site: "slow3", Backoff: true}}
	})
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	v := checkExposition(t, buf.String())
	want := map[string]float64{`gannet_site_backoff{site="slow"}`: 1, `gannet_site_backoff{site="slow2"}`: 1,
		`gannet_site_backoff{site="other"}`: 1}
	for k, w := range want {
		if got, ok := v[k]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, w)
		}
	}
	if n := strings.Count(buf.String(), "\ngannet_site_backoff{"); n != 3 {
		t.Errorf("%d backoff series, want 2 named + other:\n%s", n, buf.String())
	}
	m.SetMaxDestinationLabels(10)
	buf.Reset()
	m.WritePrometheus(&buf)
	v = checkExposition(t, buf.String())
	if busy, ok := v[`gannet_site_backoff{site="busy"}`]; !ok || busy != 0 || v[`gannet_site_backoff{site="slow3"}`] != 1 {
		t.Errorf("gauges %v, want busy 0 and slow3 1", v)
	}
}

// TestSiteTunedGauge: gannet_site_tuned_rate gives each tuning site's
// learned rate and gannet_site_tuned_connections its connection limit;
// past the label cap the rest are summed under "other"; a site that has
// learned no rate (only connections) is not in the rate gauge.
func TestSiteTunedGauge(t *testing.T) {
	m := New()
	m.SetMaxDestinationLabels(2)
	m.SetSiteTuned(func() []SiteTuned {
		return []SiteTuned{{Site: "mx.c.test", Rate: 3, Conns: 2}, {Site: "mx.a.test", Rate: 42.5, Conns: 4},
			{Site: "mx.b.test", Rate: 0.5, Conns: 3}, {Site: "mx.d.test", Rate: 4, Conns: 5}, {Site: "mx.0.test", Conns: 6}}
	})
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	v := checkExposition(t, buf.String())
	want := map[string]float64{`gannet_site_tuned_rate{site="mx.a.test"}`: 42.5,
		`gannet_site_tuned_rate{site="mx.b.test"}`: 0.5, `gannet_site_tuned_rate{site="other"}`: 7,
		`gannet_site_tuned_connections{site="mx.0.test"}`: 6, `gannet_site_tuned_connections{site="mx.a.test"}`: 4,
		`gannet_site_tuned_connections{site="other"}`: 10}
	for k, w := range want {
		if got, ok := v[k]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, w)
		}
	}
	for _, name := range []string{"gannet_site_tuned_rate", "gannet_site_tuned_connections"} {
		if n := strings.Count(buf.String(), "\n"+name+"{"); n != 3 {
			t.Errorf("%d %s series, want 2 named + other:\n%s", n, name, buf.String())
		}
	}
}
