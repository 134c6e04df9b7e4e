package config

import (
	"net"
	"net/netip"
	"os"
	"strings"

	"gannet/mailaddr"
)

// finish fills in what a file may leave empty and normalizes spellings, so
// that users of a Config never see an empty name or mixed case: listener
// names default to the listen address, empty host names become this
// machine's, AUTH mechanisms are upper case, domains and hex digests lower
// case, and a bare nameserver IP gets port 53. It also prepares what Login
// compares an unknown AUTH name with.
func (c *Config) finish() {
	host := ""
	hostname := func() string {
		if host == "" {
			h, err := os.Hostname()
			if err != nil || h == "" {
				h = "localhost"
			}
			host = h
		}
		return host
	}
	for i := range c.SMTPListeners {
		l := &c.SMTPListeners[i]
		if l.Name == "" {
			l.Name = l.Listen
		}
		if l.Hostname == "" {
			l.Hostname = hostname()
		}
		for j, m := range l.AuthMechanisms {
			l.AuthMechanisms[j] = strings.ToUpper(strings.TrimSpace(m))
		}
	}
	if c.Delivery.EHLOName == "" {
		c.Delivery.EHLOName = hostname()
	}
	for i, ns := range c.Resolver.Nameservers {
		if a, err := netip.ParseAddr(ns); err == nil {
			c.Resolver.Nameservers[i] = net.JoinHostPort(a.String(), "53")
		}
	}
	for i := range c.APIKeys {
		c.APIKeys[i].KeySHA256 = strings.ToLower(c.APIKeys[i].KeySHA256)
	}
	for i := range c.DKIM {
		c.DKIM[i].Domain = mailaddr.CanonicalDomain(c.DKIM[i].Domain)
	}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		t.DKIMDomain = mailaddr.CanonicalDomain(t.DKIMDomain)
		for j, d := range t.DKIMDomains {
			t.DKIMDomains[j] = mailaddr.CanonicalDomain(strings.TrimSpace(d))
		}
	}
	if len(c.ShapingTables) > 0 {
		m := make(map[string]ShapingTable, len(c.ShapingTables))
		for k, v := range c.ShapingTables {
			m[mailaddr.CanonicalDomain(k)] = v
		}
		c.ShapingTables = m
	}
	c.finishDeliveryPolicy()
	c.finishCluster(hostname)
	c.finishFeedback()
	c.finishEventSinks()
	c.makeLoginDummy()
}
