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
