package inbound

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gannet/smtpwire"
)

// listener is the gnet event handler of one ListenerConfig: one gnet engine
// with its own event loops and its own ticker, so a listener's configuration
// is at hand in every callback without looking at addresses.
type listener struct {
	gnet.BuiltinEventEngine

	srv  *Server
	cfg  ListenerConfig
	name string

	// sessCfg holds the session configurations this listener hands out,
	// indexed by whether the peer may relay: only the others must AUTH.
	sessCfg [2]*smtpwire.ServerConfig
	// guard counts failed AUTH per client address; nil when off.
	guard *authGuard
	// tick is the interval of the timeout sweep.
	tick time.Duration

	// Set in OnBoot, before any event loop runs.
	eng      gnet.Engine
	bound    netip.AddrPort
	anyLocal bool // bound to the unspecified address: ask the socket for Local
	bootErr  error
	booted   chan struct{}
	done     chan error

	mu    sync.Mutex
	conns map[*conn]struct{}
	perIP map[netip.Addr]int

	// refusing counts the refused implicit-TLS connections whose handshake
	// (to send the 421 over TLS) is still running; see refuse.
	refusing atomic.Int32
}

func newListener(s *Server, cfg ListenerConfig) *listener {
	l := &listener{
		srv:   s,
		cfg:   cfg,
		name:  cfg.Name,
		conns: make(map[*conn]struct{}),
		perIP: make(map[netip.Addr]int),
	}
	authOK := s.auth != nil && len(cfg.AuthMechs) > 0
	for relay := 0; relay < 2; relay++ {
		sc := &smtpwire.ServerConfig{
			Hostname:       cfg.Hostname,
			MaxMessageSize: cfg.MaxMessageSize,
			MaxRecipients:  cfg.MaxRecipients,
			MaxBadCommands: cfg.MaxBadCommands,
			BareLF:         cfg.BareLF,
			StartTLS:       cfg.TLSConfig != nil && !cfg.ImplicitTLS,
			// RFC 4954 §4 lets a server offer AUTH only under TLS; the
			// contract's auth_require_tls does exactly that (538 5.7.11
			// when tried before).
			AuthRequireTLS: cfg.AuthRequireTLS,
			CRAMChallenge:  l.cramChallenge,
			// RFC 8689: REQUIRETLS is offered on the listener's TLS
			// sessions (smtpwire offers it only once TLS is on);
			// engine/outbound honours it.
			RequireTLS: cfg.TLSConfig != nil,
		}
		if s.releaseBody {
			sc.BodyBuffer = s.bodies.Get
		}
		if authOK {
			sc.AuthMechs = cfg.AuthMechs
			// A client outside relay_hosts must authenticate before MAIL
			// (530 5.7.0). Without AUTH on offer, its recipients are
			// refused instead (554 5.7.1).
			sc.AuthRequired = relay == 0
		}
		l.sessCfg[relay] = sc
	}
	l.tick = sweepInterval(cfg)
	l.guard = newAuthGuard(cfg)
	return l
}

// sweepInterval picks how often the timeout sweep runs: a quarter of the
// shortest timeout, between 10 ms and 1 s.
func sweepInterval(cfg ListenerConfig) time.Duration {
	d := min(cfg.CommandTimeout, cfg.DataTimeout, cfg.IdleTimeout)
	if cfg.SessionTimeout > 0 {
		d = min(d, cfg.SessionTimeout)
	}
	d /= 4
	return max(10*time.Millisecond, min(d, time.Second))
}

// start runs the gnet engine on its own goroutine and waits until it is
// listening.
func (l *listener) start() error {
	if err := CheckListenAddr(l.cfg.Listen); err != nil {
		return fmt.Errorf("smtp_listener %q: %w", l.name, err)
	}
	l.booted = make(chan struct{}, 1)
	l.done = make(chan error, 1)
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		// Without SO_REUSEADDR a restart right after connections closed
		// fails with "address already in use".
		gnet.WithReuseAddr(true),
		// The ticker drives the timeout sweep (gnet has no deadlines).
		gnet.WithTicker(true),
		gnet.WithTCPKeepAlive(time.Minute),
		gnet.WithLogger(gnetLogger{l.srv.log}),
	}
	if l.srv.loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(l.srv.loops))
	}
	go func() { l.done <- gnet.Run(l, "tcp://"+l.cfg.Listen, opts...) }()
	select {
	case <-l.booted:
	case err := <-l.done:
		if err == nil {
			err = errors.New("engine stopped while starting")
		}
		return fmt.Errorf("inbound: listener %q on %s: %w", l.name, l.cfg.Listen, err)
	}
	if l.bootErr != nil {
		err := l.bootErr
		<-l.done
		l.done = nil
		return fmt.Errorf("inbound: listener %q: bound address: %w", l.name, err)
	}
	l.srv.log.Debug("smtp listener started", "listener", l.name, "addr", l.bound.String())
	return nil
}

// stop stops the gnet engine (a hard close of what is left) and waits for
// its goroutine.
func (l *listener) stop(ctx context.Context) error {
	if l.done == nil {
		return nil
	}
	err := l.eng.Stop(ctx)
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		err = errors.Join(err, fmt.Errorf("inbound: listener %q: engine did not stop", l.name))
	}
	l.done = nil
	return err
}

// OnBoot runs once the socket listens and before any event loop starts: it
// learns the bound address here, so the loops see it without locking.
func (l *listener) OnBoot(eng gnet.Engine) gnet.Action {
	defer func() { l.booted <- struct{}{} }()
	l.eng = eng
	bound, err := boundAddr(eng)
	if err != nil {
		l.bootErr = err
		return gnet.Shutdown
	}
	l.bound = bound
	l.anyLocal = bound.Addr().IsUnspecified()
	return gnet.None
}

// OnOpen admits a connection (or answers 421 4.3.2 and closes it) and sends
// the greeting, RFC 5321 §4.3.1.
func (l *listener) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	peer := addrPortOf(c.RemoteAddr())
	if l.srv.draining.Load() {
		l.srv.metrics.ErrorIn(l.name, 421)
		if l.cfg.ImplicitTLS {
			return nil, gnet.Close // no handshakes while shutting down
		}
		r := l.reply(421, "4.3.2", l.cfg.Hostname+" Service shutting down")
		l.rejectConnect(peer, r)
		return r, gnet.Close
	}
	if l.guard.blocked(peer.Addr(), l.srv.now()) && !l.mayRelay(peer.Addr()) {
		// Too many failed AUTH from this address: shut it out for a while
		// (RFC 3463 X.7.0, other security status).
		l.srv.metrics.ErrorIn(l.name, 421)
		l.srv.log.Debug("connection refused: AUTH failures", "listener", l.name, "peer", peer.String())
		return l.refuse(c, peer, l.rejectConnect(peer, l.reply(421, "4.7.0", l.cfg.Hostname+" Too many failed authentications, try again later")))
	}
	if reason := l.admit(peer.Addr()); reason != "" {
		l.srv.metrics.ErrorIn(l.name, 421)
		l.srv.log.Debug("connection refused", "listener", l.name, "peer", peer.String(), "reason", reason)
		return l.refuse(c, peer, l.rejectConnect(peer, l.reply(421, "4.3.2", l.cfg.Hostname+" "+reason+", try again later")))
	}
	local := l.bound
	if l.anyLocal {
		if sa, err := syscall.Getsockname(c.Fd()); err == nil {
			local = sockaddrToAddrPort(sa)
		}
	}
	st := newConn(l, c, peer, local)
	c.SetContext(st)
	l.mu.Lock()
	l.conns[st] = struct{}{}
	l.mu.Unlock()
	l.srv.metrics.ConnOpened(l.name)
	if l.cfg.ImplicitTLS {
		// RFC 8314 §3: the TLS handshake comes first, the greeting after it.
		st.startTLS()
		return nil, gnet.None
	}
	st.setDeadline()
	g := st.sess.Greeting()
	st.checkTrace()
	st.publishGreeting(g)
	return g, gnet.None
}

// rejectConnect reports a connection refused before its greeting
// (Options.OnRejection) and returns reply.
func (l *listener) rejectConnect(peer netip.AddrPort, reply []byte) []byte {
	if fn := l.srv.onRejection; fn != nil {
		fn(&Rejection{Listener: l.name, Peer: peer, Command: "connect", Reply: reply, Seq: 1})
	}
	return reply
}

// refuseHandshakeTimeout bounds the TLS handshake of a connection that is
// only told 421 on an implicit-TLS listener, and maxRefusing how many such
// handshakes run at once: past it, a refused connection is closed without a
// word, so that a flood past the connection limits costs no more than that.
const (
	refuseHandshakeTimeout = 10 * time.Second
	maxRefusing            = 64
)

// refuse answers a connection the listener will not serve with reply and
// closes it. On a plaintext listener the reply is the first thing written.
// On an implicit-TLS listener (RFC 8314 §3) the client expects a handshake
// first and would read plaintext as a TLS error, so the handshake is done
// (bounded by refuseHandshakeTimeout) and the 421 goes over TLS, as Postfix's
// smtpd does in wrapper mode. Such a connection is not counted against the
// limits (it was refused by them) and never reads a command.
func (l *listener) refuse(c gnet.Conn, peer netip.AddrPort, reply []byte) ([]byte, gnet.Action) {
	if !l.cfg.ImplicitTLS {
		return reply, gnet.Close
	}
	if l.refusing.Add(1) > maxRefusing {
		l.refusing.Add(-1)
		return nil, gnet.Close
	}
	st := newConn(l, c, peer, l.bound)
	st.refusal = reply
	c.SetContext(st)
	st.startTLSWithin(refuseHandshakeTimeout)
	return nil, gnet.None
}

// admit counts a new connection against the listener's limits; a non-empty
// result says why it is refused.
func (l *listener) admit(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxConnections > 0 && len(l.conns) >= l.cfg.MaxConnections {
		return "Too many connections"
	}
	if l.cfg.MaxConnectionsPerIP > 0 && l.perIP[ip] >= l.cfg.MaxConnectionsPerIP {
		return "Too many connections from your address"
	}
	l.perIP[ip]++
	return ""
}

// OnClose forgets the connection.
func (l *listener) OnClose(c gnet.Conn, err error) gnet.Action {
	st, _ := c.Context().(*conn)
	if st == nil {
		return gnet.None // refused in OnOpen, never counted
	}
	st.onClose(err)
	if st.refusal != nil {
		l.refusing.Add(-1)
		return gnet.None // refused over TLS (refuse), never counted
	}
	l.mu.Lock()
	delete(l.conns, st)
	ip := st.peer.Addr()
	if l.perIP[ip] <= 1 {
		delete(l.perIP, ip)
	} else {
		l.perIP[ip]--
	}
	l.mu.Unlock()
	l.srv.metrics.ConnClosed(l.name)
	return gnet.None
}

// OnTraffic feeds the new bytes to the connection's session.
func (l *listener) OnTraffic(c gnet.Conn) gnet.Action {
	st, _ := c.Context().(*conn)
	if st == nil {
		_, _ = c.Discard(-1)
		return gnet.Close
	}
	return st.onTraffic()
}

// OnTick runs the timeout sweep. It runs on gnet's ticker goroutine, not on
// an event loop, so it only reads each connection's atomic deadline and asks
// the connection's own loop to act on the expired ones.
func (l *listener) OnTick() (time.Duration, gnet.Action) {
	now := l.srv.now().UnixNano()
	var expired []*conn
	l.mu.Lock()
	for st := range l.conns {
		if d := st.deadline.Load(); d != 0 && now >= d && !st.timeoutQueued.Load() {
			expired = append(expired, st)
		}
	}
	l.mu.Unlock()
	l.guard.prune(time.Unix(0, now))
	for _, st := range expired {
		st.timeoutQueued.Store(true)
		st.onLoop(st.expire)
	}
	return l.tick, gnet.None
}

// openConns counts the listener's open connections.
func (l *listener) openConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// drainIdle asks every connection to close if it is between transactions.
func (l *listener) drainIdle() {
	l.mu.Lock()
	all := make([]*conn, 0, len(l.conns))
	for st := range l.conns {
		all = append(all, st)
	}
	l.mu.Unlock()
	for _, st := range all {
		st.onLoop(st.drainIfIdle)
	}
}

// mayRelay tells whether a client at ip may relay without AUTH.
func (l *listener) mayRelay(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l.cfg.RelayHosts {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// reply formats one reply line.
func (l *listener) reply(code int, enhanced, text string) []byte {
	return smtpwire.Reply{Code: code, Enhanced: enhanced, Lines: []string{text}}.AppendTo(nil)
}

// cramChallenge makes a CRAM-MD5 challenge in the RFC 2195 §2 form
// "<random.timestamp@hostname>"; crypto/rand makes it unpredictable.
func (l *listener) cramChallenge() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "<" + strconv.FormatUint(binary.BigEndian.Uint64(r[:]), 10) + "." +
		strconv.FormatInt(l.srv.now().UnixNano(), 10) + "@" + l.cfg.Hostname + ">"
}

// addrPortOf converts gnet's net.Addr to a netip.AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// CheckListenAddr binds addr ("host:port") for a moment and says in plain
// words why it cannot be listened on: "127.0.0.1:2525 is already in use"
// where gnet would report "setsockopt: bad file descriptor" after seconds,
// or that the address is not this host's. Port 0 always passes.
func CheckListenAddr(addr string) error {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln.Close()
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s is already in use (another process listens there)", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s: that address is not one of this host's", addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)", addr)
	}
	return err
}
