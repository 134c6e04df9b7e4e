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

// listener is one ListenerConfig at work on a socket: its settings, limits
// and connections. A reload that changes the settings of a listen address
// gives its socket a new listener (Server.Reconfigure): new connections are
// served by it, those already open finish on the listener they came in on.
type listener struct {
	srv  *Server
	sock *socket
	cfg  ListenerConfig
	raw  ListenerConfig // cfg as given, before withDefaults (Reconfigure compares it)
	name string

	// sessCfg holds the session configurations this listener hands out,
	// indexed by whether the peer may relay: only the others must AUTH.
	sessCfg [2]*smtpwire.ServerConfig
	// guard counts failed AUTH per client address; nil when off.
	guard *authGuard
	// tick is the interval of the timeout sweep.
	tick time.Duration

	// draining: the listener was removed by a reload (or replaced on its
	// socket): its sessions are told 421 at their next command boundary.
	draining atomic.Bool

	mu    sync.Mutex
	conns map[*conn]struct{}
	perIP map[netip.Addr]int
	// waiting are the connections whose PROXY protocol header has not
	// arrived yet (ProxyProtocol; proxy.go).
	waiting map[*proxyWait]struct{}

	// refusing counts the refused implicit-TLS connections whose handshake
	// (to send the 421 over TLS) is still running; see refuse.
	refusing atomic.Int32
}

func newListener(s *Server, cfg ListenerConfig) *listener {
	l := &listener{
		srv:     s,
		cfg:     cfg,
		name:    cfg.Name,
		conns:   make(map[*conn]struct{}),
		perIP:   make(map[netip.Addr]int),
		waiting: make(map[*proxyWait]struct{}),
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
			sc.BodyBuffer = s.bodyBuffer
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
	if cfg.ProxyProtocol {
		d = min(d, cfg.ProxyHeaderTimeout)
	}
	d /= 4
	return max(10*time.Millisecond, min(d, time.Second))
}

// socket is the gnet event handler of one listen address: one gnet engine
// with its own event loops and its own ticker. Its current listener serves
// new connections; a connection keeps the listener it was opened on.
type socket struct {
	gnet.BuiltinEventEngine

	srv    *Server
	listen string // the configured address
	cur    atomic.Pointer[listener]

	// Set in OnBoot, before any event loop runs.
	eng      gnet.Engine
	bound    netip.AddrPort
	anyLocal bool // bound to the unspecified address: ask the socket for Local
	bootErr  error
	booted   chan struct{}
	done     chan error

	mu      sync.Mutex
	retired []*listener // listeners replaced in place whose connections are still open
	// removed: the socket's listeners drain and the socket then stops.
	removed bool
	stopped bool
}

func newSocket(s *Server, l *listener) *socket {
	k := &socket{srv: s, listen: l.cfg.Listen}
	l.sock = k
	k.cur.Store(l)
	return k
}

// listeners returns the current listener and the retired ones.
func (k *socket) listeners() []*listener {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*listener{k.cur.Load()}, k.retired...)
}

// replace makes l the listener of new connections; the one it replaces
// drains its connections.
func (k *socket) replace(l *listener) {
	l.sock = k
	k.mu.Lock()
	old := k.cur.Swap(l)
	k.retired = append(k.retired, old)
	k.mu.Unlock()
	old.draining.Store(true)
	old.drainIdle()
}

// openConns counts the connections open on all the socket's listeners.
func (k *socket) openConns() int {
	n := 0
	for _, l := range k.listeners() {
		n += l.openConns()
	}
	return n
}

// drainIdle asks every connection between transactions to close.
func (k *socket) drainIdle() {
	for _, l := range k.listeners() {
		l.drainIdle()
	}
}

// start runs the gnet engine on its own goroutine and waits until it is
// listening.
func (k *socket) start() error {
	l := k.cur.Load()
	if err := CheckListenAddr(l.cfg.Listen); err != nil {
		return fmt.Errorf("smtp_listener %q: %w", l.name, err)
	}
	k.booted = make(chan struct{}, 1)
	k.done = make(chan error, 1)
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
	go func() { k.done <- gnet.Run(k, "tcp://"+l.cfg.Listen, opts...) }()
	select {
	case <-k.booted:
	case err := <-k.done:
		if err == nil {
			err = errors.New("engine stopped while starting")
		}
		return fmt.Errorf("inbound: listener %q on %s: %w", l.name, l.cfg.Listen, err)
	}
	if k.bootErr != nil {
		err := k.bootErr
		<-k.done
		k.done = nil
		return fmt.Errorf("inbound: listener %q: bound address: %w", l.name, err)
	}
	l.srv.log.Debug("smtp listener started", "listener", l.name, "addr", k.bound.String())
	return nil
}

// stop stops the gnet engine (a hard close of what is left) and waits for
// its goroutine. A second call does nothing.
func (k *socket) stop(ctx context.Context) error {
	k.mu.Lock()
	if k.stopped || k.done == nil {
		k.stopped = true
		k.mu.Unlock()
		return nil
	}
	k.stopped = true
	k.mu.Unlock()
	err := k.eng.Stop(ctx)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		err = errors.Join(err, fmt.Errorf("inbound: listener %q: engine did not stop", k.cur.Load().name))
	}
	return err
}

// OnBoot runs once the socket listens and before any event loop starts: it
// learns the bound address here, so the loops see it without locking.
func (k *socket) OnBoot(eng gnet.Engine) gnet.Action {
	defer func() { k.booted <- struct{}{} }()
	k.eng = eng
	bound, err := boundAddr(eng)
	if err != nil {
		k.bootErr = err
		return gnet.Shutdown
	}
	k.bound = bound
	k.anyLocal = bound.Addr().IsUnspecified()
	return gnet.None
}

// OnOpen hands a new connection to the current listener.
func (k *socket) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	return k.cur.Load().onOpen(c)
}

// OnClose forgets the connection on the listener it was opened on.
func (k *socket) OnClose(c gnet.Conn, err error) gnet.Action {
	switch st := c.Context().(type) {
	case *conn:
		return st.l.onClose(st, err)
	case *proxyWait:
		st.onClose(err)
	}
	return gnet.None // refused in OnOpen, never counted
}

// OnTraffic feeds the new bytes to the connection's session, or to the
// PROXY protocol header's parser.
func (k *socket) OnTraffic(c gnet.Conn) gnet.Action {
	switch st := c.Context().(type) {
	case *conn:
		return st.onTraffic()
	case *proxyWait:
		return st.onTraffic()
	}
	_, _ = c.Discard(-1)
	return gnet.Close
}

// OnTick runs the timeout sweep of every listener of the socket, and
// forgets the retired listeners whose connections are all gone.
func (k *socket) OnTick() (time.Duration, gnet.Action) {
	cur := k.cur.Load()
	for _, l := range k.listeners() {
		l.sweep()
	}
	k.mu.Lock()
	kept := k.retired[:0]
	for _, l := range k.retired {
		if l.openConns() > 0 || l.refusing.Load() > 0 {
			kept = append(kept, l)
		}
	}
	clear(k.retired[len(kept):])
	k.retired = kept
	k.mu.Unlock()
	return cur.tick, gnet.None
}

// onOpen takes a new connection: with ProxyProtocol it waits for the
// header (proxy.go), otherwise it is opened at once.
func (l *listener) onOpen(c gnet.Conn) ([]byte, gnet.Action) {
	peer := addrPortOf(c.RemoteAddr())
	if l.cfg.ProxyProtocol {
		return l.awaitProxyHeader(c, peer)
	}
	return l.open(c, peer)
}

// open admits a connection from the client at peer (or answers 421 4.3.2
// and closes it) and sends the greeting, RFC 5321 §4.3.1.
func (l *listener) open(c gnet.Conn, peer netip.AddrPort) ([]byte, gnet.Action) {
	if l.srv.draining.Load() || l.draining.Load() {
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
	local := l.sock.bound
	if l.sock.anyLocal {
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
	st := newConn(l, c, peer, l.sock.bound)
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
	if l.cfg.MaxConnections > 0 && len(l.conns)+len(l.waiting) >= l.cfg.MaxConnections {
		return "Too many connections"
	}
	if l.cfg.MaxConnectionsPerIP > 0 && l.perIP[ip] >= l.cfg.MaxConnectionsPerIP {
		return "Too many connections from your address"
	}
	l.perIP[ip]++
	return ""
}

// onClose forgets the connection.
func (l *listener) onClose(st *conn, err error) gnet.Action {
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

// sweep is the timeout sweep. It runs on gnet's ticker goroutine, not on
// an event loop, so it only reads each connection's atomic deadline and asks
// the connection's own loop to act on the expired ones.
func (l *listener) sweep() {
	now := l.srv.now().UnixNano()
	var expired []*conn
	l.mu.Lock()
	for st := range l.conns {
		if d := st.deadline.Load(); d != 0 && now >= d && !st.timeoutQueued.Load() {
			expired = append(expired, st)
		}
	}
	var late []*proxyWait
	for w := range l.waiting {
		if now >= w.deadline && !w.timeoutQueued.Load() {
			late = append(late, w)
		}
	}
	l.mu.Unlock()
	for _, w := range late {
		w.timeoutQueued.Store(true)
		w.onLoop(w.expire)
	}
	l.guard.prune(time.Unix(0, now))
	for _, st := range expired {
		st.timeoutQueued.Store(true)
		st.onLoop(st.expire)
	}
}

// openConns counts the listener's open connections.
func (l *listener) openConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns) + len(l.waiting)
}

// drainIdle asks every connection to close if it is between transactions.
func (l *listener) drainIdle() {
	l.mu.Lock()
	all := make([]*conn, 0, len(l.conns))
	for st := range l.conns {
		all = append(all, st)
	}
	waiting := make([]*proxyWait, 0, len(l.waiting))
	for w := range l.waiting {
		waiting = append(waiting, w)
	}
	l.mu.Unlock()
	for _, st := range all {
		st.onLoop(st.drainIfIdle)
	}
	for _, w := range waiting {
		w.onLoop(w.drain)
	}
}

// mayRelay tells whether a client at ip may relay without AUTH.
func (l *listener) mayRelay(ip netip.Addr) bool {
	return containsAddr(l.cfg.RelayHosts, ip)
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
