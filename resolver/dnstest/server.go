package dnstest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is an authoritative DNS server for zones given as RFC 1035 master
// file text, listening on one loopback port over UDP and TCP.
type Server struct {
	// Addr is "127.0.0.1:port", the same port for UDP and TCP.
	Addr string

	udp, tcp *dns.Server
	zone     atomic.Pointer[zone]
	closed   chan struct{}
	close    sync.Once

	mu       sync.Mutex
	behavior map[string]behavior // by lower-case FQDN
	queries  []Query
	secure   []string // SetSecure's suffixes, lower-case FQDNs
}

// Query is one question the server received.
type Query struct {
	Name string // lower-case FQDN
	Type uint16
	Net  string // "udp" or "tcp"
}

// behavior is a misbehavior configured for one name.
type behavior struct {
	rcode    int           // answer with this RCODE when set (> 0)
	hang     bool          // never answer
	delay    time.Duration // answer late
	truncate bool          // over UDP, answer only "truncated"
}

// maxQueryLog bounds the query log.
const maxQueryLog = 100000

// Start parses zone and starts serving it on 127.0.0.1 at a free port. The
// text may hold several zones: each SOA record starts the authority over
// its owner name and everything below it.
func Start(zoneText string) (*Server, error) {
	z, err := parseZone(zoneText)
	if err != nil {
		return nil, err
	}
	s := &Server{closed: make(chan struct{}), behavior: make(map[string]behavior)}
	s.zone.Store(z)

	pc, ln, err := listenPair()
	if err != nil {
		return nil, err
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}

	started := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range 2 {
		select {
		case err := <-started:
			if err != nil {
				s.Close()
				return nil, err
			}
		case <-time.After(5 * time.Second):
			s.Close()
			return nil, errors.New("dnstest: server did not start")
		}
	}
	return s, nil
}

// listenPair opens a UDP socket and a TCP listener on the same free port of
// 127.0.0.1. The UDP port the kernel picks may be in use over TCP (by a
// client connection, say), so it tries a bounded number of ports.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", lastErr)
}

// NewServer starts a server for a test and stops it when the test ends.
func NewServer(tb testing.TB, zoneText string) *Server {
	tb.Helper()
	s, err := Start(zoneText)
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server; answers held back by Hang or Delay are dropped.
func (s *Server) Close() {
	s.close.Do(func() {
		close(s.closed)
		if s.udp != nil {
			_ = s.udp.Shutdown()
		}
		if s.tcp != nil {
			_ = s.tcp.Shutdown()
		}
	})
}

// SetZone replaces the served records.
func (s *Server) SetZone(zoneText string) error {
	z, err := parseZone(zoneText)
	if err != nil {
		return err
	}
	s.zone.Store(z)
	return nil
}

// Fail makes every question about name answer SERVFAIL.
func (s *Server) Fail(name string) { s.SetRcode(name, dns.RcodeServerFailure) }

// SetRcode makes every question about name answer with rcode and no records.
func (s *Server) SetRcode(name string, rcode int) {
	s.update(name, func(b *behavior) { b.rcode = rcode })
}

// Hang makes the server never answer questions about name, as a server
// behind a lossy network or a dead upstream would.
func (s *Server) Hang(name string) { s.update(name, func(b *behavior) { b.hang = true }) }

// Delay makes the server wait d before answering questions about name.
func (s *Server) Delay(name string, d time.Duration) {
	s.update(name, func(b *behavior) { b.delay = d })
}

// Truncate makes UDP answers about name come back empty with the TC bit set,
// so that only TCP gets the records (RFC 1035 §4.2.1). Large answers are
// truncated over UDP anyway, to 512 bytes or the EDNS0 size of the query.
func (s *Server) Truncate(name string) { s.update(name, func(b *behavior) { b.truncate = true }) }

// Heal removes everything Fail, SetRcode, Hang, Delay and Truncate set up
// for name.
func (s *Server) Heal(name string) {
	s.mu.Lock()
	delete(s.behavior, canonical(name))
	s.mu.Unlock()
}

func (s *Server) update(name string, f func(*behavior)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := canonical(name)
	b := s.behavior[n]
	f(&b)
	s.behavior[n] = b
}

// SetSecure makes answers about suffix and the names below it carry the
// AD bit ("authentic data", RFC 4035 §3.2.3) when the query asked for
// DNSSEC (AD or DO set): the server then stands in for a validating
// resolver that found those names signed. Nothing is signed.
func (s *Server) SetSecure(suffix string) {
	s.mu.Lock()
	s.secure = append(s.secure, canonical(suffix))
	s.mu.Unlock()
}

// isSecure reports whether SetSecure covers name.
func (s *Server) isSecure(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, suf := range s.secure {
		if name == suf || strings.HasSuffix(name, "."+suf) {
			return true
		}
	}
	return false
}

// Queries returns the questions received so far, oldest first.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// QueryCount counts the questions received for (name, qtype) over any
// transport; qtype 0 counts every type.
func (s *Server) QueryCount(name string, qtype uint16) int {
	n := canonical(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := 0
	for _, q := range s.queries {
		if q.Name == n && (qtype == 0 || q.Type == qtype) {
			c++
		}
	}
	return c
}

// canonical returns name as a lower-case FQDN.
func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// maxChase bounds the CNAME chain the server follows inside its own data.
const maxChase = 16

// serve answers one query.
func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		resp.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	network := w.LocalAddr().Network()

	s.mu.Lock()
	if len(s.queries) < maxQueryLog {
		s.queries = append(s.queries, Query{Name: name, Type: q.Qtype, Net: network})
	}
	b := s.behavior[name]
	s.mu.Unlock()

	if b.hang {
		return // no answer at all: the client times out
	}
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
			return
		}
	}

	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	opt := req.IsEdns0()
	switch {
	case b.rcode > 0:
		resp.Rcode = b.rcode
	case network == "udp" && b.truncate:
		resp.Truncated = true
	default:
		s.zone.Load().answer(resp, name, q.Qtype)
		wantsDNSSEC := req.AuthenticatedData || (req.IsEdns0() != nil && req.IsEdns0().Do())
		resp.AuthenticatedData = wantsDNSSEC && s.isSecure(name)
	}
	if opt != nil {
		resp.SetEdns0(min(opt.UDPSize(), 4096), false)
	}
	if network == "udp" {
		size := dns.MinMsgSize
		if opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size) // sets TC when the answer does not fit (RFC 6891 §7)
	}
	_ = w.WriteMsg(resp)
}
