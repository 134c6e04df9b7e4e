package httpapi

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"gannet/proxyproto"
)

// ProxyHeaderTimeout bounds the wait for a PROXY protocol header on an
// HTTP listener with ProxyProtocol (proxy-protocol.txt §2: at least 3 s).
const ProxyHeaderTimeout = 5 * time.Second

// Reasons given to Options.OnProxyRefused (as inbound's).
const (
	ProxyUntrusted = "untrusted"
	ProxyMalformed = "malformed"
	ProxyTimeout   = "timeout"
)

// proxyListener reads the PROXY protocol header of every accepted
// connection of an HTTP listener with ProxyProtocol. Accept does not wait
// for it: the header is read on the connection's own goroutine, at the
// first RemoteAddr or Read (net/http asks for RemoteAddr first thing in
// each connection's goroutine). Its settings are those of the server
// serving now (a reload may change them; Server.Replace).
type proxyListener struct {
	net.Listener
	srv *Server
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	opts := &l.srv.current().opts
	if !opts.ProxyProtocol {
		return c, nil
	}
	return &proxyConn{Conn: c, trusted: opts.TrustedProxies, refused: opts.OnProxyRefused}, nil
}

// errProxyRefused is what Read returns on a connection whose header was
// refused (net/http then closes it).
var errProxyRefused = errors.New("httpapi: connection refused: PROXY protocol")

// proxyConn is a connection whose first bytes are a PROXY header.
type proxyConn struct {
	net.Conn
	trusted []netip.Prefix
	refused func(reason string, peer netip.AddrPort, err error)

	once   sync.Once
	err    error
	client net.Addr // from the header; nil: the real peer (LOCAL, UNKNOWN)
	rest   []byte   // bytes read behind the header
}

// init reads and parses the header, once.
func (c *proxyConn) init() {
	c.once.Do(func() {
		peer := addrPort(c.Conn.RemoteAddr())
		reason, err := c.readHeader(peer)
		if err == nil {
			return
		}
		c.err = errProxyRefused
		if c.refused != nil && reason != "" {
			c.refused(reason, peer, err)
		}
		_ = c.Conn.Close()
	})
}

func (c *proxyConn) readHeader(peer netip.AddrPort) (string, error) {
	if !containsAddr(c.trusted, peer.Addr().Unmap()) {
		return ProxyUntrusted, errors.New("not from trusted_proxies")
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(ProxyHeaderTimeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	// Parse decides within MaxLength bytes, so the buffer is bounded.
	buf := make([]byte, 0, proxyproto.MaxLength)
	for {
		n, err := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		h, perr := proxyproto.Parse(buf)
		switch {
		case perr == nil:
			if !h.Local {
				c.client = net.TCPAddrFromAddrPort(netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port()))
			}
			c.rest = append([]byte(nil), buf[h.Len:]...)
			return "", nil
		case !errors.Is(perr, proxyproto.ErrIncomplete):
			return ProxyMalformed, perr
		case err != nil && len(buf) == 0 && errors.Is(err, io.EOF):
			return "", err // closed before a byte: a TCP health check
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return ProxyTimeout, err
			}
			return ProxyMalformed, err
		}
	}
}

// RemoteAddr is the client the header names.
func (c *proxyConn) RemoteAddr() net.Addr {
	c.init()
	if c.client != nil {
		return c.client
	}
	return c.Conn.RemoteAddr()
}

func (c *proxyConn) Read(b []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// addrPort is a's address and port (4-in-6 unmapped); zero for other kinds.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
