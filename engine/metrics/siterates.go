package metrics

import (
	"sort"
	"strconv"
)

// SiteRateTopN is the default number of sites gannet_site_effective_rate
// lists by name; the others are summed under site="other", so that the
// number of series stays bounded however many destinations there are.
// [metrics] max_destination_labels changes it (SetMaxDestinationLabels).
const SiteRateTopN = DefaultMaxLabels

// SiteRate is the effective message rate of one delivery path.
type SiteRate struct {
	Site   string  // MX site key
	Source string  // egress source name ("" for the default source)
	Rate   float64 // messages per second allowed now; 0 = unlimited
	Weight int     // how busy the path is (queued + in flight): the top N are the busiest
}

// SetSiteRates installs the function that gannet_site_effective_rate
// calls at each scrape. It must be safe to call from any goroutine.
func (m *Metrics) SetSiteRates(f func() []SiteRate) { m.siteRates.Store(&f) }

// appendSiteRates writes gannet_site_effective_rate{site,source}: the
// MaxDestinationLabels busiest paths, then the sum of the others as
// site="other".
func (m *Metrics) appendSiteRates(out []byte) []byte {
	p := m.siteRates.Load()
	if p == nil {
		return out
	}
	rates := (*p)()
	if len(rates) == 0 {
		return out
	}
	sort.SliceStable(rates, func(i, j int) bool { return rates[i].Weight > rates[j].Weight })
	limit := m.MaxDestinationLabels()
	out = append(out, "# HELP gannet_site_effective_rate Messages per second a destination site (per egress source) may get now, after adaptive back-off and shaping rules; 0 means unlimited.\n"...)
	out = append(out, "# TYPE gannet_site_effective_rate gauge\n"...)
	var other float64
	for i, r := range rates {
		if i >= limit {
			other += r.Rate
			continue
		}
		out = append(out, `gannet_site_effective_rate{site="`...)
		out = append(out, escapeLabel(r.Site)...)
		out = append(out, `",source="`...)
		out = append(out, escapeLabel(r.Source)...)
		out = append(out, `"} `...)
		out = strconv.AppendFloat(out, r.Rate, 'g', -1, 64)
		out = append(out, '\n')
	}
	if len(rates) > limit {
		out = append(out, `gannet_site_effective_rate{site="other",source=""} `...)
		out = strconv.AppendFloat(out, other, 'g', -1, 64)
		out = append(out, '\n')
	}
	return out
}

// SiteBackoff is whether a destination site is in backoff mode.
type SiteBackoff struct {
	Site    string
	Backoff bool
	Weight  int // how busy the site is: past the label cap, the busiest are named
}

// SetSiteBackoffs installs the function that gannet_site_backoff calls at
// each scrape. It must be safe to call from any goroutine.
func (m *Metrics) SetSiteBackoffs(f func() []SiteBackoff) { m.siteBackoffs.Store(&f) }

// appendSiteBackoffs writes gannet_site_backoff{site}: 1 for a site in
// backoff mode, 0 for one that is not. Within MaxDestinationLabels the
// sites in backoff come first, then the busiest; the rest are summed
// under site="other" (the number of other sites in backoff).
func (m *Metrics) appendSiteBackoffs(out []byte) []byte {
	p := m.siteBackoffs.Load()
	if p == nil {
		return out
	}
	sites := (*p)()
	if len(sites) == 0 {
		return out
	}
	sort.SliceStable(sites, func(i, j int) bool {
		if sites[i].Backoff != sites[j].Backoff {
			return sites[i].Backoff
		}
		return sites[i].Weight > sites[j].Weight
	})
	limit := m.MaxDestinationLabels()
	out = append(out, "# HELP gannet_site_backoff 1 while a destination site is in backoff mode (a shaping rule with action backoff, or backoff_on_deferral_rate), 0 otherwise.\n"...)
	out = append(out, "# TYPE gannet_site_backoff gauge\n"...)
	other := 0
	for i, s := range sites {
		v := 0
		if s.Backoff {
			v = 1
		}
		if i >= limit {
			other += v
			continue
		}
		out = append(out, `gannet_site_backoff{site="`...)
		out = append(out, escapeLabel(s.Site)...)
		out = append(out, `"} `...)
		out = strconv.AppendInt(out, int64(v), 10)
		out = append(out, '\n')
	}
	if len(sites) > limit {
		out = append(out, `gannet_site_backoff{site="other"} `...)
		out = strconv.AppendInt(out, int64(other), 10)
		out = append(out, '\n')
	}
	return out
}

// SiteTuned is what a site's self-tuning learned.
type SiteTuned struct {
	Site  string
	Rate  float64 // messages per second of each path to the site (0: none learned)
	Conns int     // connection limit of each path to the site (0: not tuned)
}

// SetSiteTuned installs the function that gannet_site_tuned_rate and
// gannet_site_tuned_connections call at each scrape. It must be safe to
// call from any goroutine.
func (m *Metrics) SetSiteTuned(f func() []SiteTuned) { m.siteTuned.Store(&f) }

// appendSiteTuned writes gannet_site_tuned_rate{site} and
// gannet_site_tuned_connections{site}: the learned rate and connection
// limit of each tuning site (by name, MaxDestinationLabels of them, the
// rest summed under site="other"); a site that has learned no rate is
// left out of the first.
func (m *Metrics) appendSiteTuned(out []byte) []byte {
	p := m.siteTuned.Load()
	if p == nil {
		return out
	}
	sites := (*p)()
	if len(sites) == 0 {
		return out
	}
	sort.Slice(sites, func(i, j int) bool { return sites[i].Site < sites[j].Site })
	out = m.appendSiteGauge(out, "gannet_site_tuned_rate",
		"Messages per second the self-tuning ([shaping] tune = true) found a destination site takes, per egress source.",
		sites, func(s *SiteTuned) float64 { return s.Rate })
	return m.appendSiteGauge(out, "gannet_site_tuned_connections",
		"Connections per egress source the self-tuning ([shaping] tune = true) found a destination site takes (at most connection_limit).",
		sites, func(s *SiteTuned) float64 { return float64(s.Conns) })
}

// appendSiteGauge writes one gauge of the tuned sites with a value above
// 0: MaxDestinationLabels of them by name, the sum of the rest as
// site="other".
func (m *Metrics) appendSiteGauge(out []byte, name, help string, sites []SiteTuned, value func(*SiteTuned) float64) []byte {
	limit := m.MaxDestinationLabels()
	n, other := 0, 0.0
	for i := range sites {
		v := value(&sites[i])
		if v <= 0 {
			continue
		}
		if n == 0 {
			out = append(out, "# HELP "+name+" "+help+"\n# TYPE "+name+" gauge\n"...)
		}
		if n++; n > limit {
			other += v
			continue
		}
		out = append(out, name+`{site="`...)
		out = append(out, escapeLabel(sites[i].Site)...)
		out = append(out, `"} `...)
		out = strconv.AppendFloat(out, v, 'g', -1, 64)
		out = append(out, '\n')
	}
	if n > limit {
		out = append(out, name+`{site="other"} `...)
		out = strconv.AppendFloat(out, other, 'g', -1, 64)
		out = append(out, '\n')
	}
	return out
}
