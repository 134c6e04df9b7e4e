package outbound

import "gannet/resolver"

// Path is the way mail to a destination domain leaves Gannet: from an
// egress source to a site (a set of MX hosts, or the relay_to smarthost).
// Limits, adaptive back-off and ready queues are kept per path, that is
// per Key, and connection pools per path and TLS policy: the domains routed
// to one site share them. Domain is the destination domain that led there,
// whose configuration applies ([shaping."DOMAIN"], [tls_policy."DOMAIN"]).
type Path struct {
	Source string           // egress source name; "" for the default source
	Site   resolver.SiteKey // where the mail goes; zero before routing
	Domain string           // destination domain
}

// Key names the path's state: the egress source and the site, not the
// domain. Distinct paths have distinct keys (a site's string form is its
// own, resolver.SiteKey.String). It allocates only for a named source.
func (p Path) Key() string {
	if p.Source == "" {
		return p.Site.String()
	}
	return p.Source + "|" + p.Site.String()
}
