package inbound

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gannet/proxyproto"
)

// Reasons of Metrics.ProxyRefused (the reason label of
// gannet_proxy_protocol_refused_total).
const (
	ProxyUntrusted = "untrusted" // the TCP peer is not in TrustedProxies
	ProxyMalformed = "malformed" // no header, a broken one, or a partial one then EOF
	ProxyTimeout   = "timeout"   // no complete header within ProxyHeaderTimeout
)

// proxyWait is a connection on a ProxyProtocol listener whose PROXY header
// has not arrived yet. It lives in the gnet.Conn context until the header
// is parsed; the connection is then opened as any other, with the client
// address of the header as its peer (listener.open), and gets its conn.
//
// Nothing is written before the header has been parsed: proxy-protocol.txt
// §2, "The receiver MUST NOT start processing the connection before it
// receives a complete and valid PROXY protocol header. This is particularly
// important for protocols where the receiver is expected to speak first (eg:
// SMTP …)". What a connection may make the listener hold meanwhile is what
// gnet buffers: Parse decides within proxyproto.MaxLength bytes, and only
// that much is ever peeked at.
type proxyWait struct {
	l     *listener
	c     gnet.Conn
	proxy netip.AddrPort // the TCP peer: the proxy
	// deadline is when the header must be complete, Unix nanoseconds of
	// the server clock; set once, read by the sweep.
	deadline      int64
	timeoutQueued atomic.Bool
	done          bool // loop-only: parsed, refused or closed
	seen          bool // loop-only: some bytes arrived
	refused       bool // told 421 at connect: what it sends is dropped
}

// awaitProxyHeader takes a new connection of a ProxyProtocol listener:
// one from an address outside TrustedProxies is refused at once — it may
// never send a header (§2: "only trusted proxies are allowed to use this
// protocol") — and the others wait for their header.
func (l *listener) awaitProxyHeader(c gnet.Conn, peer netip.AddrPort) ([]byte, gnet.Action) {
	now := l.srv.now().UnixNano()
	if !containsAddr(l.cfg.TrustedProxies, peer.Addr()) {
		l.srv.log.Info("PROXY protocol: connection from an address outside trusted_proxies refused", "listener", l.name, "peer", peer.String())
		out, act := l.refuseProxy(peer, ProxyUntrusted, 421, "4.7.0", "PROXY protocol required: connect through a trusted proxy")
		// A lingering close: the header such a peer sent at once is read
		// and dropped before the socket closes (within refusedLinger), so
		// that the peer gets the 421 and a FIN rather than a reset.
		w := &proxyWait{l: l, c: c, proxy: peer, deadline: now + int64(refusedLinger), refused: true}
		if out == nil || !l.addWaiting(w) {
			return out, act
		}
		c.SetContext(w)
		return out, gnet.None
	}
	w := &proxyWait{l: l, c: c, proxy: peer, deadline: now + int64(l.cfg.ProxyHeaderTimeout)}
	if !l.addWaiting(w) {
		l.srv.metrics.ErrorIn(l.name, 421)
		if l.cfg.ImplicitTLS {
			return nil, gnet.Close
		}
		return l.rejectConnect(peer, l.reply(421, "4.3.2", l.cfg.Hostname+" Too many connections, try again later")), gnet.Close
	}
	c.SetContext(w)
	return nil, gnet.None
}

// refusedLinger is how long a connection refused at once may keep sending
// before it is closed.
const refusedLinger = time.Second

// addWaiting puts w on the waiting list, unless the listener is at
// MaxConnections.
func (l *listener) addWaiting(w *proxyWait) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxConnections > 0 && len(l.conns)+len(l.waiting) >= l.cfg.MaxConnections {
		return false
	}
	l.waiting[w] = struct{}{}
	return true
}

// refuseProxy counts and reports a connection refused for its PROXY
// header and returns what to write before closing it: a 421 on a
// plaintext listener — so that a client behind a misconfigured proxy
// queues its mail and retries rather than bouncing it, as a 554 would
// make it (RFC 5321 §3.1 allows either at connection opening) — and
// nothing on an implicit-TLS one, whose client expects a TLS handshake.
func (l *listener) refuseProxy(peer netip.AddrPort, reason string, code int, enhanced, text string) ([]byte, gnet.Action) {
	l.srv.metrics.ProxyRefused(l.name, reason)
	r := l.reply(code, enhanced, l.cfg.Hostname+" "+text)
	if fn := l.srv.onRejection; fn != nil {
		fn(&Rejection{Listener: l.name, Peer: peer, Command: "PROXY", Reply: r, Seq: 1})
	}
	if l.cfg.ImplicitTLS {
		return nil, gnet.Close
	}
	l.srv.metrics.ErrorIn(l.name, code)
	return r, gnet.Close
}

// onTraffic parses the header once it is complete, then opens the
// connection for the client it names.
func (w *proxyWait) onTraffic() gnet.Action {
	if w.done || w.refused {
		_, _ = w.c.Discard(-1)
		if !w.done {
			w.forget()
		}
		return gnet.Close
	}
	w.seen = true
	b, _ := w.c.Peek(min(w.c.InboundBuffered(), proxyproto.MaxLength))
	h, err := proxyproto.Parse(b)
	if errors.Is(err, proxyproto.ErrIncomplete) {
		return gnet.None // Parse decides within MaxLength bytes: this wait is bounded
	}
	l := w.l
	w.forget()
	if err != nil {
		l.srv.log.Warn("PROXY protocol: bad header from a trusted proxy, connection refused", "listener", l.name, "peer", w.proxy.String(), "err", err)
		out, act := l.refuseProxy(w.proxy, ProxyMalformed, 421, "4.7.0", "Bad PROXY protocol header")
		_, _ = w.c.Write(out)
		return act
	}
	_, _ = w.c.Discard(h.Len)
	peer := w.proxy
	if !h.Local {
		// §2.1 and §2.2: the source address is the client's. LOCAL and
		// UNKNOWN keep the real endpoints (the proxy's own health check).
		peer = netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port())
	}
	w.c.SetContext(nil)
	out, act := l.open(w.c, peer)
	if len(out) > 0 {
		_, _ = w.c.Write(out)
	}
	if act != gnet.None {
		return act
	}
	// Bytes behind the header (an implicit-TLS ClientHello, an early
	// talker) came in the same read: gnet calls OnTraffic again only for
	// new bytes, so they are handled now.
	if st, ok := w.c.Context().(*conn); ok && w.c.InboundBuffered() > 0 {
		return st.onTraffic()
	}
	return gnet.None
}

// forget takes the connection off the waiting list.
func (w *proxyWait) forget() {
	w.done = true
	w.l.mu.Lock()
	delete(w.l.waiting, w)
	w.l.mu.Unlock()
}

// onClose runs in gnet's OnClose while the header is awaited: a client
// that sent part of a header and left is counted as malformed; one that
// sent nothing (a TCP health check) is only forgotten.
func (w *proxyWait) onClose(err error) {
	if w.done {
		return
	}
	w.forget()
	if w.refused {
		return
	}
	if w.seen {
		w.l.srv.metrics.ProxyRefused(w.l.name, ProxyMalformed)
		w.l.srv.log.Warn("PROXY protocol: connection closed within its header", "listener", w.l.name, "peer", w.proxy.String())
		return
	}
	w.l.srv.log.Debug("PROXY protocol: connection closed before its header", "listener", w.l.name, "peer", w.proxy.String(), "err", err)
}

// expire runs on the loop when the sweep found the header late: 421 4.4.2
// (RFC 3463: X.4.2, bad connection, as for the other timeouts) and close.
func (w *proxyWait) expire() {
	w.timeoutQueued.Store(false)
	if w.done || w.l.srv.now().UnixNano() < w.deadline {
		return
	}
	w.forget()
	if w.refused {
		w.closeWith(nil) // told already
		return
	}
	w.l.srv.log.Warn("PROXY protocol: no header in time, connection refused", "listener", w.l.name, "peer", w.proxy.String(), "timeout", w.l.cfg.ProxyHeaderTimeout)
	out, _ := w.l.refuseProxy(w.proxy, ProxyTimeout, 421, "4.4.2", "No PROXY protocol header in time, closing")
	w.closeWith(out)
}

// drain runs on the loop while the listener or the server stops: a
// connection still waiting for its header is told 421 4.3.2 and closed.
func (w *proxyWait) drain() {
	if w.done {
		return
	}
	w.forget()
	l := w.l
	var out []byte
	if !l.cfg.ImplicitTLS && !w.refused {
		l.srv.metrics.ErrorIn(l.name, 421)
		out = l.reply(421, "4.3.2", l.cfg.Hostname+" Service shutting down")
	}
	w.closeWith(out)
}

// closeWith writes out and closes the connection (on its loop).
func (w *proxyWait) closeWith(out []byte) {
	if len(out) > 0 {
		_, _ = w.c.Write(out)
	}
	_ = w.c.EventLoop().Close(w.c)
}

// onLoop queues fn on the connection's event loop.
func (w *proxyWait) onLoop(fn func()) {
	_ = w.c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		fn()
		return nil
	}))
}

// containsAddr reports whether ip (4-in-6 unmapped) is inside one of ps.
func containsAddr(ps []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
