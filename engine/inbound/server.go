package inbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/ants/v2"
	"github.com/panjf2000/gnet/v2"

	"gannet/engine/trace"
	"gannet/internal/bufpool"
	"gannet/smtpwire"
)

// Server runs the SMTP listeners. Build it with New, then Start; Stop drains it.
type Server struct {
	acc     Acceptor
	auth    Authenticator
	greeter Greeter
	log     *slog.Logger
	now     func() time.Time
	metrics Metrics
	// onRejection and trace are Options.OnRejection and Options.Trace.
	onRejection func(*Rejection)
	trace       *trace.Hub
	// feedbackDomain is Options.FeedbackDomain (nil: none).
	feedbackDomain func(string) bool
	workers        int
	loops          int

	pool *ants.Pool
	// socks are the listen sockets in config order, then those removed by
	// a reload that still drain; guarded by mu once started.
	socks []*socket

	// inflight counts jobs handed to the worker pool and not yet answered
	// on their event loop; Stop waits for it to reach zero.
	inflight sync.WaitGroup
	draining atomic.Bool
	// tlsScratch lends the event loops 16 KiB buffers to decrypt into.
	tlsScratch sync.Pool
	// bodies lends the sessions their message buffers; releaseBody is set
	// when the Acceptor gives them back (BodyReleaser).
	bodies      bufpool.Pool
	releaseBody bool
	// bodyHint is a running average of the sizes of the bodies received
	// lately, on every listener (bodyBuffer).
	bodyHint atomic.Int64

	// reconfMu serializes Reconfigure.
	reconfMu sync.Mutex
	mu       sync.Mutex
	started  bool
	stopped  bool
}

// New checks the listener configs and builds a Server; nothing listens
// until Start.
func New(cfgs []ListenerConfig, acc Acceptor, opts Options) (*Server, error) {
	if acc == nil {
		return nil, errors.New("inbound: nil Acceptor")
	}
	s := &Server{
		acc:     acc,
		auth:    opts.Authenticator,
		greeter: opts.Greeter,
		log:     opts.Logger,
		now:     opts.Now,
		metrics: opts.Metrics,
		workers: opts.Workers,
		trace:   opts.Trace,

		onRejection:    opts.OnRejection,
		loops:          opts.EventLoops,
		feedbackDomain: opts.FeedbackDomain,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.metrics == nil {
		s.metrics = nopMetrics{}
	}
	if s.workers <= 0 {
		s.workers = DefaultWorkers
	}
	if r, ok := acc.(BodyReleaser); ok {
		s.releaseBody = r.ReleasesBody()
	}
	s.tlsScratch.New = func() any {
		b := make([]byte, tlsReadChunk)
		return &b
	}
	names := make(map[string]bool)
	for _, raw := range cfgs {
		c, err := raw.withDefaults()
		if err != nil {
			return nil, err
		}
		if names[c.Name] {
			return nil, fmt.Errorf("inbound: two listeners named %q", c.Name)
		}
		names[c.Name] = true
		l := newListener(s, c)
		l.raw = raw
		s.socks = append(s.socks, newSocket(s, l))
	}
	return s, nil
}

// Start binds every listener and starts its event loops. It returns once all
// listeners accept connections, or with the first error (then nothing is left
// running).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("inbound: server already started")
	}
	s.started = true
	// Importing gnet releases ants' default pool in an init function, so the
	// server keeps a pool of its own. Non-blocking: a full pool is answered
	// with 451 4.3.2 instead of stalling an event loop.
	pool, err := ants.NewPool(s.workers, ants.WithNonblocking(true), ants.WithLogger(antsLogger{s.log}))
	if err != nil {
		return fmt.Errorf("inbound: worker pool: %w", err)
	}
	s.pool = pool
	for i, k := range s.socks {
		if err := k.start(); err != nil {
			for _, prev := range s.socks[:i] {
				prev.stop(context.Background())
			}
			s.pool.Release()
			return err
		}
	}
	return nil
}

// Addrs returns the bound address of each listener, in config order. With a
// "host:0" listen address this is where the kernel put it.
func (s *Server) Addrs() []net.Addr {
	var out []net.Addr
	for _, k := range s.sockets() {
		if !k.isRemoved() {
			out = append(out, net.TCPAddrFromAddrPort(k.bound))
		}
	}
	return out
}

// sockets returns the sockets, those draining included.
func (s *Server) sockets() []*socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*socket(nil), s.socks...)
}

// Stop drains the server: new connections are answered "421 4.3.2" and
// closed, idle sessions are told the same at their next command boundary,
// transactions in progress may finish (their final reply is sent, then the
// 421), and messages already handed to workers are answered. When all
// connections are gone or ctx is done, the event loops are stopped; any
// connection still open then is closed without a reply.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()

	s.draining.Store(true)
	for _, k := range s.sockets() {
		k.drainIdle()
	}
	// Wait for the connections to finish their transactions. A session
	// answers its 421 itself when its transaction ends; the periodic
	// drainIdle catches sessions that went idle between batches (RSET).
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var ctxErr error
	lastDrain := time.Now()
wait:
	for s.OpenConnections() > 0 {
		select {
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break wait
		case <-t.C:
			if time.Since(lastDrain) >= time.Second {
				for _, k := range s.sockets() {
					k.drainIdle()
				}
				lastDrain = time.Now()
			}
		}
	}
	// Workers still running have an answer on the way; wait for them, but
	// no longer than ctx allows.
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
	}
	var errs []error
	for _, k := range s.sockets() {
		if err := k.stop(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	s.pool.Release()
	if ctxErr != nil {
		errs = append(errs, ctxErr)
	}
	return errors.Join(errs...)
}

// SetDraining makes the server refuse new mail, or take it again: new
// connections are answered "421 4.3.2" and closed, as are sessions at
// their next command boundary (transactions in progress finish first),
// while the listeners stay open (gannet drain, for rolling restarts). It
// does nothing once Stop has begun.
func (s *Server) SetDraining(on bool) {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return
	}
	s.draining.Store(on)
	if on {
		for _, k := range s.sockets() {
			k.drainIdle()
		}
	}
}

// Draining reports whether the server refuses new mail (SetDraining, Stop).
func (s *Server) Draining() bool { return s.draining.Load() }

// boundAddr asks the kernel where the listening socket of eng is bound:
// gnet reports the configured address (port 0 stays 0), so the listener's
// descriptor is duplicated and getsockname'd.
func boundAddr(eng gnet.Engine) (netip.AddrPort, error) {
	fd, err := eng.Dup()
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sockaddrToAddrPort(sa), nil
}

func sockaddrToAddrPort(sa syscall.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// antsLogger sends the worker pool's messages to slog.
type antsLogger struct{ log *slog.Logger }

func (l antsLogger) Printf(format string, args ...any) {
	l.log.Warn("inbound worker pool", "msg", fmt.Sprintf(format, args...))
}

// gnetLogger sends gnet's messages to slog (its INFO chatter at debug level).
type gnetLogger struct{ log *slog.Logger }

func (l gnetLogger) Debugf(format string, args ...any) {
	l.log.Debug("gnet", "msg", fmt.Sprintf(format, args...))
}
func (l gnetLogger) Infof(format string, args ...any) {
	l.log.Debug("gnet", "msg", fmt.Sprintf(format, args...))
}
func (l gnetLogger) Warnf(format string, args ...any) {
	l.log.Warn("gnet", "msg", fmt.Sprintf(format, args...))
}
func (l gnetLogger) Errorf(format string, args ...any) {
	l.log.Error("gnet", "msg", fmt.Sprintf(format, args...))
}
func (l gnetLogger) Fatalf(format string, args ...any) {
	l.log.Error("gnet fatal", "msg", fmt.Sprintf(format, args...))
}

// accept calls the Acceptor on a worker; a panic becomes 451 4.3.0 (the
// message is not durable, the client will retry) rather than a dead server.
func (s *Server) accept(ctx context.Context, in *Incoming) (r smtpwire.Reply) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("acceptor panic", "listener", in.Listener, "panic", fmt.Sprint(p))
			r = smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"Internal error, try again later"}}
		}
	}()
	r = s.acc.Accept(ctx, in)
	if r.Code == 0 {
		r = smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"Internal error, try again later"}}
	}
	return r
}

// authenticate calls the Authenticator on a worker; a panic refuses.
func (s *Server) authenticate(ctx context.Context, cred smtpwire.AuthCredentials) (user, tenant string, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("authenticator panic", "panic", fmt.Sprint(p))
			user, tenant, ok = "", "", false
		}
	}()
	return s.auth.Authenticate(ctx, cred)
}

// OpenConnections counts the connections open on all listeners (for the
// gannet_connections gauge and for tests).
func (s *Server) OpenConnections() int {
	n := 0
	for _, k := range s.sockets() {
		n += k.openConns()
	}
	return n
}

// maxBodyHint caps bodyHint, as smtpwire caps what SIZE= may reserve.
const maxBodyHint = 256 << 10

// bodyBuffer lends a session the buffer for a message body: room for n
// bytes (what the session expects from SIZE= or from its previous body) or,
// when that is more, for the average recent body, so that a large message
// is not copied through doubling buffers as it arrives also when it is the
// first of its connection — many clients send one message per connection.
func (s *Server) bodyBuffer(n int) []byte {
	return s.bodies.Get(max(n, int(s.bodyHint.Load())))
}

// noteBody folds the size of a received body into bodyHint, with weight
// 1/8. Concurrent updates may lose one: it is a hint.
func (s *Server) noteBody(size int) {
	h := s.bodyHint.Load()
	s.bodyHint.Store(h + (int64(min(size, maxBodyHint))-h)/8)
}
