package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"gannet/engine/trace"

	"github.com/panjf2000/gnet/v2"
)

// Limits of a TLS session on the loop.
const (
	// maxHandshakeBuffered caps the ciphertext a client may send before its
	// handshake has finished (a ClientHello is a few kilobytes).
	maxHandshakeBuffered = 256 << 10
	// tlsReadChunk is the plaintext scratch size; one TLS record holds at
	// most 16 KiB (RFC 8446 §5.1).
	tlsReadChunk = 16 << 10
)

// tlsConn runs TLS for one connection without leaving its event loop
// (design (a) in doc.go). The handshake runs on a short-lived goroutine that
// reads ciphertext from a cipherPipe the loop fills; once it is done, the
// loop itself pushes ciphertext in and pulls plaintext out of the tls.Conn
// until the pipe reports "would block".
type tlsConn struct {
	st    *conn
	pipe  *cipherPipe
	tc    *tls.Conn
	ready bool                 // handshake done; loop-only from then on
	state *tls.ConnectionState // set when ready

	plain []byte // decrypted, not yet parsed
	off   int
}

// startTLS begins the server side of a TLS handshake (after the 220 of
// STARTTLS, RFC 3207 §4, or at once for implicit TLS, RFC 8314 §3.3). It runs
// on the loop; the handshake itself goes on a goroutine bounded by the
// command timeout, and its outcome comes back to the loop via tlsReady.
func (st *conn) startTLS() {
	st.startTLSWithin(st.l.cfg.CommandTimeout)
}

// startTLSWithin is startTLS with the handshake bounded by timeout.
func (st *conn) startTLSWithin(timeout time.Duration) {
	t := &tlsConn{st: st, pipe: newCipherPipe(st.c)}
	t.tc = tls.Server(t.pipe, st.l.cfg.TLSConfig)
	st.tls = t
	st.setDeadline()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := t.tc.HandshakeContext(ctx)
		cancel()
		st.onLoop(func() { st.tlsReady(err) })
	}()
}

// tlsReady runs on the loop when the handshake has ended.
func (st *conn) tlsReady(err error) {
	t := st.tls
	if err != nil {
		st.l.srv.metrics.TLSFailure(st.l.name)
		st.l.srv.log.Debug("TLS handshake failed", "listener", st.l.name, "peer", st.peer.String(), "err", err)
		if st.traceID != 0 {
			st.publish(trace.Error, "TLS handshake failed: "+err.Error())
		}
		st.closing = true
		return
	}
	t.pipe.setOnLoop()
	t.ready = true
	cs := t.tc.ConnectionState()
	t.state = &cs
	if st.traceID != 0 {
		st.publish(trace.TLS, tlsText(cs.Version, cs.CipherSuite, cs.ServerName))
	}
	// RFC 3207 §4.2: forget everything learned before TLS (EHLO, AUTH, the
	// transaction). The session stops offering STARTTLS.
	st.sess.TLSStarted()
	if st.refusal != nil {
		// Refused at connect (listener.refuse): the 421 instead of the
		// greeting, then close (onLoop flushes and closes).
		st.write(st.refusal)
		st.closing = true
		return
	}
	if st.l.cfg.ImplicitTLS {
		g := st.sess.Greeting()
		st.checkTrace()
		st.publishGreeting(g)
		st.write(g)
	}
	// The handshake's deadline is over: the first command gets its own.
	st.deadline.Store(0)
	st.process()
}

// tlsTraffic takes the ciphertext gnet read and, when the session is free
// and the handshake done, decrypts and parses it.
func (st *conn) tlsTraffic() gnet.Action {
	t := st.tls
	data, _ := st.c.Next(-1)
	buffered := t.pipe.push(data)
	limit := maxHandshakeBuffered
	if t.ready {
		limit = max(st.inboundLimit(), maxHandshakeBuffered)
	}
	if buffered+len(t.plain)-t.off > limit {
		st.ranAhead()
		return gnet.Close
	}
	if !t.ready || st.busy {
		return gnet.None
	}
	st.process()
	if st.closing {
		return gnet.Close
	}
	return gnet.None
}

// plainInput decrypts every complete record the pipe holds and returns the
// plaintext not yet parsed. A TLS error or close_notify ends the session.
func (t *tlsConn) plainInput() []byte {
	if !t.ready {
		return nil
	}
	if t.off > 0 && t.off == len(t.plain) {
		t.plain, t.off = t.plain[:0], 0
	}
	// The scratch buffer is borrowed for this call only, so that an idle
	// TLS connection does not pin 16 KiB.
	srv := t.st.l.srv
	sp := srv.tlsScratch.Get().(*[]byte)
	defer srv.tlsScratch.Put(sp)
	scratch := *sp
	for !t.st.closing {
		n, err := t.tc.Read(scratch)
		t.plain = append(t.plain, scratch[:n]...)
		if err != nil {
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				// close_notify (io.EOF) or a broken record: the client is gone.
				if !errors.Is(err, io.EOF) {
					t.st.l.srv.log.Debug("TLS read failed", "listener", t.st.l.name, "peer", t.st.peer.String(), "err", err)
				}
				t.st.closing = true
			}
			break
		}
		if n == 0 {
			break
		}
	}
	return t.plain[t.off:]
}

func (t *tlsConn) consumePlain(n int) {
	t.off += n
	if t.off == len(t.plain) {
		t.plain, t.off = t.plain[:0], 0
		if cap(t.plain) > 4<<10 {
			t.plain = nil // a message body passed through; do not keep its buffer
		}
	} else if t.off > 64<<10 && t.off > len(t.plain)/2 {
		m := copy(t.plain, t.plain[t.off:])
		t.plain, t.off = t.plain[:m], 0
	}
}

// writePlain encrypts b onto the connection (on the loop).
func (t *tlsConn) writePlain(b []byte) {
	if !t.ready {
		return
	}
	if _, err := t.tc.Write(b); err != nil {
		t.st.closing = true
	}
}

// closeNotify sends the TLS close_notify alert before the socket closes.
func (t *tlsConn) closeNotify() {
	if t.ready {
		_ = t.tc.Close()
	}
}

// abort unblocks a handshake still waiting for ciphertext.
func (t *tlsConn) abort() { t.pipe.Close() }

// errWouldBlock is what cipherPipe.Read returns on the loop when it has no
// ciphertext: a temporary net.Error, after which crypto/tls keeps the
// connection usable and the partial record buffered (crypto/tls
// readRecordOrCCS; tested by TestTLSRecordsSplitAcrossReads).
var errWouldBlock = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "inbound: no ciphertext buffered" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

// cipherPipe is the net.Conn a tls.Conn sees. The loop pushes the ciphertext
// gnet read; Read hands it out. During the handshake Read blocks (it is on the
// handshake goroutine) and Write goes out with AsyncWrite; once the handshake
// is done both run on the loop, Read never blocks and Write is direct.
type cipherPipe struct {
	c gnet.Conn

	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte
	off    int
	closed bool
	onLoop bool
}

func newCipherPipe(c gnet.Conn) *cipherPipe {
	p := &cipherPipe{c: c}
	p.cond.L = &p.mu
	return p
}

// push appends a copy of b (gnet's slice is only valid in the callback) and
// returns how many bytes are buffered.
func (p *cipherPipe) push(b []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off > 0 && p.off == len(p.buf) {
		p.buf, p.off = p.buf[:0], 0
	}
	p.buf = append(p.buf, b...)
	p.cond.Broadcast()
	return len(p.buf) - p.off
}

func (p *cipherPipe) setOnLoop() {
	p.mu.Lock()
	p.onLoop = true
	p.mu.Unlock()
}

func (p *cipherPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.off == len(p.buf) && !p.closed && !p.onLoop {
		p.cond.Wait()
	}
	if p.off == len(p.buf) {
		if p.closed {
			return 0, net.ErrClosed
		}
		return 0, errWouldBlock
	}
	n := copy(b, p.buf[p.off:])
	p.off += n
	return n, nil
}

func (p *cipherPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	closed, onLoop := p.closed, p.onLoop
	p.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	if onLoop {
		return p.c.Write(b)
	}
	// On the handshake goroutine: AsyncWrite keeps the bytes (a copy, since
	// crypto/tls reuses its buffer) in order with everything else the loop
	// writes.
	if err := p.c.AsyncWrite(append([]byte(nil), b...), nil); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close wakes a blocked Read; the socket itself belongs to gnet.
func (p *cipherPipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	return nil
}

func (p *cipherPipe) LocalAddr() net.Addr  { return pipeAddr{} }
func (p *cipherPipe) RemoteAddr() net.Addr { return pipeAddr{} }

// Deadlines are not supported by gnet; the handshake is bounded by its
// context and the session by the timeout sweep.
func (p *cipherPipe) SetDeadline(time.Time) error      { return nil }
func (p *cipherPipe) SetReadDeadline(time.Time) error  { return nil }
func (p *cipherPipe) SetWriteDeadline(time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "tcp" }
func (pipeAddr) String() string  { return "gnet" }
