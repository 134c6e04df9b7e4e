package config

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"gannet/mailaddr"
)

// EgressSource is one [[egress_source]]: a local address outbound
// connections are made from, and the name given in EHLO from it.
type EgressSource struct {
	Name          string `toml:"name"`
	SourceAddress string `toml:"source_address"` // IP address; "" = the kernel's choice
	EHLOName      string `toml:"ehlo_name"`      // "" = [delivery] ehlo_name
	// IP warm-up (warmup.go): Warmup "ramp" caps the messages a day from
	// this source per provider, from WarmupDay1 doubling daily until every
	// figure reaches WarmupCap; "table" takes them from WarmupSchedule.
	// WarmupStart is day 1 ("" = first use).
	Warmup      string         `toml:"warmup"`
	WarmupStart string         `toml:"warmup_start"`
	WarmupCap   int            `toml:"warmup_cap"`
	WarmupDay1  []WarmupFigure `toml:"warmup_day1"`
	// WarmupSchedule is the day table of warmup = "table".
	WarmupSchedule []WarmupFigure `toml:"warmup_schedule"`
}

// Addr returns SourceAddress parsed (the zero Addr when empty or invalid).
func (s *EgressSource) Addr() netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(s.SourceAddress))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// EgressPool is one [[egress_pool]]: egress sources chosen by weight.
type EgressPool struct {
	Name    string         `toml:"name"`
	Sources []EgressWeight `toml:"sources"`
}

// EgressWeight is one member of an egress pool.
type EgressWeight struct {
	Name   string `toml:"name"`   // an [[egress_source]] name
	Weight int    `toml:"weight"` // relative share of transactions; 0 counts as 1
}

// Actions of an AutomationRule.
const (
	ActionSuspend = "suspend" // stop delivering to the site for Duration
	ActionBounce  = "bounce"  // bounce what is queued for the site for Duration
	ActionRate    = "rate"    // lower the site's message rate to Rate for Duration
	// ActionBackoff puts the site in backoff mode (its backoff_* shaping
	// keys); Duration and Rate, when set, replace its
	// backoff_to_normal_after and backoff_rate.
	ActionBackoff = "backoff"
)

// AutomationRule is one [[shaping_rule]]: when a reply of a destination that
// matches (MatchDomain, or MX hosts ending in MatchMXSuffix; neither: every
// destination) matches Regex, take Action for Duration.
type AutomationRule struct {
	MatchDomain   []string `toml:"match_domain"`
	MatchMXSuffix []string `toml:"match_mx_suffix"`
	Regex         string   `toml:"regex"`
	Action        string   `toml:"action"` // ActionSuspend | ActionBounce | ActionRate | ActionBackoff
	Duration      Duration `toml:"duration"`
	Rate          Rate     `toml:"rate"` // for ActionRate (and ActionBackoff: its backoff_rate)
}

// Backoff is [backoff]: the adaptive reaction to throttling replies (421,
// 451, 4.7.x, or a reply matching ThrottleRegex): the site's message rate
// and connection limit are multiplied by Factor, then raised again by
// RecoverStep of the configured value every RecoverInterval while
// transactions succeed.
type Backoff struct {
	Enabled         bool     `toml:"enabled"`
	Factor          float64  `toml:"factor"`
	RecoverInterval Duration `toml:"recover_interval"`
	RecoverStep     float64  `toml:"recover_step"`
	ThrottleRegex   []string `toml:"throttle_regex"`
}

// TLSOverride is one [tls_policy."DOMAIN"]: the [tls] keys for mail to one
// destination domain. Keys left out keep the [tls] value.
type TLSOverride struct {
	Mode              *string     `toml:"mode"`
	MinVersion        *TLSVersion `toml:"min_version"`
	Ciphers           []string    `toml:"ciphers"`
	FallbackPlaintext *bool       `toml:"fallback_plaintext"`
	MTASTS            *bool       `toml:"mta_sts"` // false: ignore the domain's MTA-STS policy
	DANE              *bool       `toml:"dane"`    // false: ignore the TLSA records of the domain's MX hosts
}

// TLSFor returns the outbound TLS policy for destination domain: [tls] with
// the keys of [tls_policy."DOMAIN"] applied.
func (c *Config) TLSFor(domain string) TLS {
	t := c.TLS
	o, ok := c.TLSPolicies[mailaddr.CanonicalDomain(domain)]
	if !ok {
		return t
	}
	if o.Mode != nil {
		t.Mode = *o.Mode
	}
	if o.MinVersion != nil {
		t.MinVersion = *o.MinVersion
	}
	if o.Ciphers != nil {
		t.Ciphers = o.Ciphers
	}
	if o.FallbackPlaintext != nil {
		t.FallbackPlaintext = *o.FallbackPlaintext
	}
	if o.DANE != nil {
		t.DANE = *o.DANE
	}
	if o.MTASTS != nil {
		t.MTASTS = *o.MTASTS
	}
	return t
}

// EgressSource returns the [[egress_source]] named name, or nil.
func (c *Config) EgressSource(name string) *EgressSource {
	for i := range c.EgressSources {
		if c.EgressSources[i].Name == name {
			return &c.EgressSources[i]
		}
	}
	return nil
}

// EgressPool returns the [[egress_pool]] named name, or nil.
func (c *Config) EgressPool(name string) *EgressPool {
	for i := range c.EgressPools {
		if c.EgressPools[i].Name == name {
			return &c.EgressPools[i]
		}
	}
	return nil
}

// TenantEgressPool returns the egress pool of tenant: its own egress_pool,
// else [delivery] egress_pool; nil when neither names one.
func (c *Config) TenantEgressPool(tenant string) *EgressPool {
	name := c.Delivery.EgressPool
	if t := c.Tenant(tenant); t != nil && t.EgressPool != "" {
		name = t.EgressPool
	}
	if name == "" {
		return nil
	}
	return c.EgressPool(name)
}

// MatchesMXSuffix reports whether every MX host name ends in one of the
// suffixes (case-insensitive). A suffix with or without its leading dot
// matches the same names: ".google.com" matches "aspmx.l.google.com" and
// "google.com" itself.
func MatchesMXSuffix(hosts, suffixes []string) bool {
	if len(hosts) == 0 || len(suffixes) == 0 {
		return false
	}
	for _, h := range hosts {
		h = mailaddr.CanonicalDomain(h)
		ok := false
		for _, s := range suffixes {
			s = mailaddr.CanonicalDomain(strings.TrimPrefix(s, "."))
			if h == s || strings.HasSuffix(h, "."+s) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// ShapingFor returns the shaping of destination domain whose MX host names
// are mxHosts: the simple [delivery] keys, then [shaping.default], then
// every provider table (one with mx_suffix) that matches the MX hosts, in
// name order, then [shaping."DOMAIN"] — each replacing the keys it sets.
func (c *Config) ShapingFor(domain string, mxHosts []string) ShapingRule {
	r := c.Shaping("")
	if len(mxHosts) > 0 {
		var names []string
		for name, t := range c.ShapingTables {
			if len(t.MXSuffix) > 0 && MatchesMXSuffix(mxHosts, t.MXSuffix) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			c.ShapingTables[n].applyTo(&r)
		}
	}
	d := mailaddr.CanonicalDomain(domain)
	if t, ok := c.ShapingTables[d]; ok && d != "" && d != ShapingDefault && len(t.MXSuffix) == 0 {
		t.applyTo(&r)
	}
	return r
}

// finishDeliveryPolicy normalizes the delivery policy keys: lower-case
// domains in [tls_policy] and rule matches.
func (c *Config) finishDeliveryPolicy() {
	if len(c.TLSPolicies) > 0 {
		m := make(map[string]TLSOverride, len(c.TLSPolicies))
		for k, v := range c.TLSPolicies {
			m[mailaddr.CanonicalDomain(k)] = v
		}
		c.TLSPolicies = m
	}
	if len(c.Relays) > 0 {
		m := make(map[string]RelayOverride, len(c.Relays))
		for k, v := range c.Relays {
			m[mailaddr.CanonicalDomain(k)] = v
		}
		c.Relays = m
	}
	for i := range c.ShapingRules {
		r := &c.ShapingRules[i]
		for j, d := range r.MatchDomain {
			r.MatchDomain[j] = mailaddr.CanonicalDomain(d)
		}
		r.Action = strings.ToLower(strings.TrimSpace(r.Action))
	}
}

// validateDeliveryPolicy checks egress sources and pools, automation rules,
// [backoff] and [tls_policy].
func (c *Config) validateDeliveryPolicy(ck *checker) {
	sources := map[string]bool{}
	for i, s := range c.EgressSources {
		p := func(k string) []string { return at("egress_source", i, k) }
		switch {
		case s.Name == "":
			ck.add(at("egress_source", i), "needs a name")
		case sources[s.Name]:
			ck.add(p("name"), "egress source %q is defined twice", s.Name)
		}
		sources[s.Name] = true
		s.validateWarmup(ck, p)
		if s.SourceAddress != "" {
			if _, err := netip.ParseAddr(strings.TrimSpace(s.SourceAddress)); err != nil {
				ck.add(p("source_address"), "%q is not an IP address", s.SourceAddress)
			}
		}
	}
	pools := map[string]bool{}
	for i, pl := range c.EgressPools {
		p := func(k string) []string { return at("egress_pool", i, k) }
		switch {
		case pl.Name == "":
			ck.add(at("egress_pool", i), "needs a name")
		case pools[pl.Name]:
			ck.add(p("name"), "egress pool %q is defined twice", pl.Name)
		}
		pools[pl.Name] = true
		if len(pl.Sources) == 0 {
			ck.add(p("sources"), "must list at least one egress source")
		}
		for _, w := range pl.Sources {
			if !sources[w.Name] {
				ck.add(p("sources"), "no [[egress_source]] is named %q", w.Name)
			}
			if w.Weight < 0 {
				ck.add(p("sources"), "weight of %q must not be negative", w.Name)
			}
		}
	}
	if n := c.Delivery.EgressPool; n != "" && !pools[n] {
		ck.add(at("delivery", "egress_pool"), "no [[egress_pool]] is named %q", n)
	}
	for i, t := range c.Tenants {
		if t.EgressPool != "" && !pools[t.EgressPool] {
			ck.add(at("tenant", i, "egress_pool"), "no [[egress_pool]] is named %q", t.EgressPool)
		}
	}

	for i, r := range c.ShapingRules {
		p := func(k string) []string { return at("shaping_rule", i, k) }
		if r.Regex == "" {
			ck.add(at("shaping_rule", i), "needs a regex")
		} else if _, err := regexp.Compile(r.Regex); err != nil {
			ck.add(p("regex"), "%q is not a regular expression: %v", r.Regex, err)
		}
		ck.oneOf(p("action"), r.Action, ActionSuspend, ActionBounce, ActionRate, ActionBackoff)
		if r.Action == ActionBackoff {
			ck.notNegative(p("duration"), r.Duration) // 0s: the site's backoff_to_normal_after
		} else {
			ck.positive(p("duration"), r.Duration)
		}
		if r.Action == ActionRate && r.Rate.Unlimited() {
			ck.add(p("rate"), "action \"rate\" needs a rate such as \"10/m\"")
		}
		for _, d := range r.MatchDomain {
			if !validDomain(d) {
				ck.add(p("match_domain"), "%q is not a domain name", d)
			}
		}
		for _, s := range r.MatchMXSuffix {
			if !validDomain(strings.TrimPrefix(strings.ToLower(s), ".")) {
				ck.add(p("match_mx_suffix"), "%q is not a host name suffix such as \".google.com\"", s)
			}
		}
	}

	b := &c.Backoff
	if b.Factor <= 0 || b.Factor >= 1 {
		ck.add(at("backoff", "factor"), "must be between 0 and 1 (exclusive), not %g", b.Factor)
	}
	if b.RecoverStep <= 0 || b.RecoverStep > 1 {
		ck.add(at("backoff", "recover_step"), "must be more than 0 and at most 1, not %g", b.RecoverStep)
	}
	ck.positive(at("backoff", "recover_interval"), b.RecoverInterval)
	for _, re := range b.ThrottleRegex {
		if _, err := regexp.Compile(re); err != nil {
			ck.add(at("backoff", "throttle_regex"), "%q is not a regular expression: %v", re, err)
		}
	}

	suites := cipherSuites()
	for dom, o := range c.TLSPolicies {
		p := func(k string) []string { return at("tls_policy", dom, k) }
		if !validDomain(dom) {
			ck.add(at("tls_policy", dom), "%q is not a domain name", dom)
		}
		if o.Mode != nil {
			ck.oneOf(p("mode"), *o.Mode, TLSOpportunistic, TLSOpportunisticInsecure, TLSRequired, TLSDisabled)
		}
		if o.MinVersion != nil {
			ck.oneOf(p("min_version"), string(*o.MinVersion), tlsVersionNames...)
		}
		for _, name := range o.Ciphers {
			if _, ok := suites[name]; !ok {
				ck.add(p("ciphers"), "%q is not a cipher suite name known to crypto/tls", name)
			}
		}
	}
}
