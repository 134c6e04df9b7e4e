package config

import (
	"strings"

	"gannet/mailaddr"
)

// Feedback is [feedback]: the bounces and complaints that come back after
// delivery (asynchronous DSNs, RFC 3464; ARF reports, RFC 5965), and the
// signed references on outbound mail that match them to what was sent.
type Feedback struct {
	// Secret is the HMAC key of the references (X-Gannet-Ref, the VERP
	// return path). "": no references are added, and reports are recorded
	// unmatched. Redacted by `config show`.
	Secret string `toml:"secret" secret:"true"`
	// Domains are recipient domains whose mail is feedback on every
	// listener: taken from anyone (no relay_hosts, no AUTH), consumed into
	// OOB and Feedback records, never relayed. ReturnPathDomain is one of
	// them without being listed. Lower case after Load.
	Domains []string `toml:"domains"`
	// ReturnPathDomain, when set (with Secret), makes the envelope sender
	// of every outbound message (but the null sender) a VERP address,
	// ReturnPathPrefix+TOKEN@ReturnPathDomain, so that DSNs come back to
	// Gannet. "": the sender's own address is kept (the default).
	ReturnPathDomain string `toml:"return_path_domain"`
	ReturnPathPrefix string `toml:"return_path_prefix"`
	// RefHeader adds the X-Gannet-Ref field to every message (before DKIM
	// signing), when Secret is set.
	RefHeader bool `toml:"ref_header"`
}

// FeedbackDomain reports whether mail to domain is feedback on every
// listener ([feedback] domains and return_path_domain).
func (f *Feedback) FeedbackDomain(domain string) bool {
	domain = mailaddr.CanonicalDomain(domain)
	if domain == "" {
		return false
	}
	if domain == f.ReturnPathDomain {
		return true
	}
	for _, d := range f.Domains {
		if d == domain {
			return true
		}
	}
	return false
}

// finishFeedback makes the domains canonical.
func (c *Config) finishFeedback() {
	f := &c.Feedback
	for i, d := range f.Domains {
		if cd := mailaddr.CanonicalDomain(d); cd != "" {
			f.Domains[i] = cd
		}
	}
	if cd := mailaddr.CanonicalDomain(f.ReturnPathDomain); cd != "" {
		f.ReturnPathDomain = cd
	}
}

// checkFeedback checks [feedback].
func (c *Config) checkFeedback(ck *checker) {
	f := &c.Feedback
	if f.ReturnPathDomain != "" && f.Secret == "" {
		ck.add(at("feedback", "return_path_domain"), "needs [feedback] secret: the return path carries a signed token")
	}
	if f.Secret != "" && len(f.Secret) < 16 {
		ck.add(at("feedback", "secret"), "is %d bytes long; use at least 16 (a random string), or the tokens can be forged", len(f.Secret))
	}
	for i, d := range append(append([]string(nil), f.Domains...), f.ReturnPathDomain) {
		if d == "" && i == len(f.Domains) {
			continue
		}
		if strings.ContainsAny(d, "@ ;<>") || !strings.Contains(d, ".") {
			ck.add(at("feedback", "domains"), "%q is not a domain name", d)
		}
	}
	p := f.ReturnPathPrefix
	if p == "" || strings.ContainsAny(p, "@+ \"<>()[]\\,;:") {
		ck.add(at("feedback", "return_path_prefix"), "%q must be a plain local part without '+' or '@'", p)
	}
}
