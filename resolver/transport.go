package resolver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// EDNSBufferSize is the UDP payload size advertised with EDNS0 (RFC 6891
// §6.2.5). 1232 bytes fits the IPv6 minimum MTU without fragmentation, the
// value of DNS Flag Day 2020.
const EDNSBufferSize = 1232

// transport sends one question to the configured nameservers.
type transport struct {
	servers []string
	udp     dns.Client
	tcp     dns.Client
	dnssec  bool // ask for validation: DO and AD bits (Config.TrustAD)
}

func newTransport(servers []string, timeout time.Duration, dnssec bool) *transport {
	return &transport{
		servers: servers,
		dnssec:  dnssec,
		udp:     dns.Client{Net: "udp", UDPSize: EDNSBufferSize, Timeout: timeout},
		tcp:     dns.Client{Net: "tcp", Timeout: timeout},
	}
}

// exchange asks each nameserver in turn until one gives a usable answer:
// NOERROR or NXDOMAIN. It asks over UDP with EDNS0 and repeats the question
// over TCP when the answer comes back truncated (RFC 1035 §4.2.1, RFC 7766
// §5). A SERVFAIL or REFUSED answer, a timeout or a network error moves on
// to the next server; when every server failed, the last failure is
// returned. Every query waits at most the configured timeout, or less if ctx
// ends first.
func (t *transport) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	var lastErr error
	for _, server := range t.servers {
		if err := ctx.Err(); err != nil {
			if lastErr == nil {
				lastErr = err
			}
			break
		}
		resp, err := t.exchangeOne(ctx, server, name, qtype)
		if err != nil {
			lastErr = err
			continue
		}
		switch resp.Rcode {
		case dns.RcodeServerFailure:
			lastErr = fmt.Errorf("%s %s at %s: %w", name, dns.TypeToString[qtype], server, ErrServerFailure)
			continue
		case dns.RcodeRefused:
			lastErr = fmt.Errorf("%s %s at %s: %w", name, dns.TypeToString[qtype], server, ErrRefused)
			continue
		}
		return resp, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no nameserver configured")
	}
	return nil, lastErr
}

// exchangeOne asks one server, over UDP first and over TCP when truncated.
func (t *transport) exchangeOne(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	// With DNSSEC: AD in the query asks for the AD bit in the answer (RFC
	// 6840 §5.7); DO says that the signatures may be sent (RFC 3225).
	q.AuthenticatedData = t.dnssec
	q.SetEdns0(EDNSBufferSize, t.dnssec)
	resp, _, err := t.udp.ExchangeContext(ctx, q, server)
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s over udp: %w", name, dns.TypeToString[qtype], server, err)
	}
	if !resp.Truncated {
		return resp, nil
	}
	q.Id = dns.Id()
	resp, _, err = t.tcp.ExchangeContext(ctx, q, server)
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s over tcp after truncation: %w", name, dns.TypeToString[qtype], server, err)
	}
	return resp, nil
}
