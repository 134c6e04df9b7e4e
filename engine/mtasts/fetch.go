package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Resolver is the DNS that MTA-STS needs (resolver.Resolver has it): the
// TXT records of "_mta-sts.DOMAIN" and the addresses of "mta-sts.DOMAIN".
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// ErrFetch wraps every reason a policy could not be fetched (§3.3): the
// host has no address, the connection or TLS failed, a redirect, a status
// other than 200, a Content-Type other than text/plain, a body over
// MaxPolicySize, or a timeout.
var ErrFetch = errors.New("MTA-STS policy fetch failed")

// Fetcher fetches policy files over HTTPS (§3.3).
type Fetcher struct {
	// Resolver resolves "mta-sts.DOMAIN"; the fetch dials only the
	// addresses it answers.
	Resolver Resolver
	// RootCAs verifies the policy server's certificate; nil: the system
	// roots. The engine gives the system roots plus [tls] ca_file.
	RootCAs *x509.CertPool
	// Timeout bounds the whole fetch: resolving, connecting, the TLS
	// handshake and reading the body (10s when 0; §3.3 asks senders to
	// use short timeouts).
	Timeout time.Duration
	// Port is the HTTPS port (443 when 0; tests may use another).
	Port int
}

// URL returns the policy URL of domain (§3.3).
func URL(domain string) string {
	return "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
}

// Fetch fetches and parses the policy of domain. The certificate must be
// valid for mta-sts.DOMAIN (§3.3); redirects are not followed (§3.3: "MUST
// NOT follow HTTP redirects"); the answer must be 200 with Content-Type
// text/plain. Errors wrap ErrFetch or, for a file that does not parse,
// ErrBadPolicy.
func (f *Fetcher) Fetch(ctx context.Context, domain string) (*Policy, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := "mta-sts." + domain
	addrs, err := f.Resolver.LookupAddrs(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFetch, host, err)
	}
	port := f.Port
	if port == 0 {
		port = 443
	}
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		// Only the addresses Gannet's resolver gave are dialled, whatever
		// address the request names.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var last error
			for _, a := range addrs {
				c, err := dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
		TLSClientConfig: &tls.Config{
			ServerName: host,
			RootCAs:    f.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		DisableKeepAlives:     true,
		ForceAttemptHTTP2:     false,
		Proxy:                 nil, // never through a proxy from the environment
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	u := URL(domain)
	if port != 443 {
		u = "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/.well-known/mta-sts.txt"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// A redirect (3xx) ends here too: it is not followed.
		return nil, fmt.Errorf("%w: %s: HTTP status %d", ErrFetch, u, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, fmt.Errorf("%w: %s: Content-Type %q, want text/plain", ErrFetch, u, resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFetch, u, err)
	}
	if len(body) > MaxPolicySize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrFetch, u, MaxPolicySize)
	}
	return ParsePolicy(body)
}
