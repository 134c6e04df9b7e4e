package outbound

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
)

// TLSMode is the outbound STARTTLS policy ([tls] mode).
type TLSMode uint8

const (
	// TLSOpportunistic uses STARTTLS when the server offers it and checks the
	// certificate; when the handshake fails (including a certificate that does
	// not verify) it reconnects and delivers in the clear, noting it in the
	// Outcome. This is the default.
	TLSOpportunistic TLSMode = iota
	// TLSOpportunisticInsecure uses STARTTLS when offered without checking the
	// certificate (RFC 7435 opportunistic security); a failed handshake also
	// falls back to the clear.
	TLSOpportunisticInsecure
	// TLSRequired refuses to deliver without TLS: no STARTTLS offered or a
	// failed handshake is a transient failure (451 4.7.10) for that host.
	TLSRequired
	// TLSDisabled never uses STARTTLS.
	TLSDisabled
)

// ParseTLSMode parses the config spelling of a mode.
func ParseTLSMode(s string) (TLSMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "opportunistic":
		return TLSOpportunistic, nil
	case "opportunistic-insecure":
		return TLSOpportunisticInsecure, nil
	case "required":
		return TLSRequired, nil
	case "disabled":
		return TLSDisabled, nil
	}
	return 0, fmt.Errorf("unknown TLS mode %q (want opportunistic, opportunistic-insecure, required or disabled)", s)
}

// String returns the config spelling.
func (m TLSMode) String() string {
	switch m {
	case TLSOpportunistic:
		return "opportunistic"
	case TLSOpportunisticInsecure:
		return "opportunistic-insecure"
	case TLSRequired:
		return "required"
	case TLSDisabled:
		return "disabled"
	}
	return fmt.Sprintf("TLSMode(%d)", uint8(m))
}

// TLSPolicy is how outbound connections use TLS.
type TLSPolicy struct {
	Mode         TLSMode
	MinVersion   uint16   // tls.VersionTLS12 when 0
	CipherSuites []uint16 // nil: Go's defaults (TLS 1.3 suites are not configurable)
	// RootCAs verifies server certificates; nil uses the system roots. Tests
	// put their self-signed CA here.
	RootCAs *x509.CertPool
	// FallbackPlaintext ([tls] fallback_plaintext): in the opportunistic
	// modes, a failed STARTTLS (refused, or a handshake that fails, for
	// example on a certificate that does not verify) is followed by a new
	// connection to the same address that delivers in the clear. Without
	// it the failure is a transient 451 4.7.10 for that host and the next
	// MX host is tried.
	FallbackPlaintext bool

	// skipVerify and verify replace the WebPKI check for a host under DANE
	// (daneTLS): the chain is checked by verify (when set) against the
	// host's TLSA records.
	skipVerify bool
	verify     func(tls.ConnectionState) error
}

// fallsBack reports whether a failed STARTTLS is retried in the clear.
func (p *TLSPolicy) fallsBack() bool {
	return p.FallbackPlaintext && (p.Mode == TLSOpportunistic || p.Mode == TLSOpportunisticInsecure)
}

// verifyKind names how p checks a server's certificate, for the session
// cache's keys: "webpki" (a chain to the roots and the host name), "dane"
// (the TLSA records, in VerifyConnection) or "none".
func (p *TLSPolicy) verifyKind() string {
	switch {
	case p.skipVerify && p.verify != nil:
		return "dane"
	case p.skipVerify || p.Mode == TLSOpportunisticInsecure:
		return "none"
	}
	return "webpki"
}

// sessionCacheSize is how many TLS sessions a Manager keeps for
// resumption: one per (MX host name, port, kind of certificate check).
const sessionCacheSize = 1024

// sessionView is a Manager's TLS session cache as one connection sees it.
// crypto/tls keys a session by the tls.Config's ServerName (the MX host
// name); the view puts the port and the kind of certificate check
// (verifyKind) before it, so that a session is offered only to the same
// service, and only when it was made under the same check.
//
// A resumed session skips the certificate chain but not the checks
// Gannet relies on: crypto/tls resumes a session under a verifying config
// only if that session's chain was verified, and checks it again against
// the current roots and the host name; and VerifyConnection (DANE's TLSA
// check, daneTLS) runs on resumed connections too. VerifyPeerCertificate
// does not, so the policies must not use it.
type sessionView struct {
	cache  tls.ClientSessionCache
	prefix string
}

func (v sessionView) Get(key string) (*tls.ClientSessionState, bool) {
	return v.cache.Get(v.prefix + key)
}

func (v sessionView) Put(key string, cs *tls.ClientSessionState) { v.cache.Put(v.prefix+key, cs) }

// config returns the tls.Config for a STARTTLS to the MX host serverName
// on port; sessions, when set, is the Manager's session cache.
func (p *TLSPolicy) config(serverName string, port uint16, sessions tls.ClientSessionCache) *tls.Config {
	minV := p.MinVersion
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	cfg := &tls.Config{
		ServerName:         serverName,
		MinVersion:         minV,
		CipherSuites:       p.CipherSuites,
		RootCAs:            p.RootCAs,
		InsecureSkipVerify: p.Mode == TLSOpportunisticInsecure || p.skipVerify,
		VerifyConnection:   p.verify,
	}
	if sessions != nil {
		cfg.ClientSessionCache = sessionView{cache: sessions, prefix: p.verifyKind() + "|" + strconv.Itoa(int(port)) + "|"}
	}
	return cfg
}
