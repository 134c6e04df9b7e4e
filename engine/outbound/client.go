package outbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"gannet/engine/trace"
	"gannet/smtpwire"
)

// dialConfig is what opening a session needs; the Manager fills it from
// Options.
type dialConfig struct {
	ehloName       string
	tls            TLSPolicy
	connectTimeout time.Duration
	commandTimeout time.Duration
	dataTimeout    time.Duration
	noChunking     bool // never BDAT (Options.NoChunking)
	localAddr      netip.Addr
	sourceName     string
	onErrorReply   func(smtpwire.Reply)
	sts            STSPolicy  // the MTA-STS policy the pool's connections are made under
	policyName     string     // Outcome.TLSPolicy
	trace          *trace.Hub // Options.Trace
	site           string     // the pool's site, for traces
	// requireTLS: the pool carries REQUIRETLS messages (RFC 8689): only
	// validated MX hosts, TLS verified, REQUIRETLS offered.
	requireTLS bool
	// skipDANE: the pool carries "TLS-Required: No" messages (RFC 8689
	// §5): no DANE (and no MTA-STS) enforcement.
	skipDANE bool
	// The smarthost (relayauth.go): TLS from the first byte, and the
	// login; onAuthFailure is Options.OnAuthFailure.
	relayTo       string // the smarthost "host:port"; "": MX hosts
	implicitTLS   bool
	auth          *RelayAuth
	onAuthFailure func(host, peer, user string, r smtpwire.Reply)
	// sessions is the Manager's TLS session cache (resumption, RFC 8446
	// §2.2); onHandshake is Options.OnTLSHandshake.
	sessions    tls.ClientSessionCache
	onHandshake func(resumed bool)
}

// Client is one SMTP client session with one server address. It is used by
// one goroutine at a time (the pool hands it out exclusively).
type Client struct {
	cfg  *dialConfig
	conn net.Conn // the TCP connection, or the *tls.Conn over it after STARTTLS
	rr   replyReader
	w    *bufio.Writer

	host   string // MX host name (for TLS and logs)
	source string // egress source name
	peer   netip.AddrPort
	local  netip.Addr // the address connected from
	ext    smtpwire.Extensions
	esmtp  bool
	tls    *tls.ConnectionState

	uses      int         // transactions started on this connection
	idleSince time.Time   // when it went back to the pool
	broken    bool        // I/O error, timeout or 421: never reuse
	dirty     bool        // a transaction was abandoned mid-way: RSET first
	scratch   []byte      // EHLO and body buffer, reused
	iov       net.Buffers // the slices of one writev (vector), reused
	// txns are the session's transactions: txns[cur] the one running, the
	// other the one pipelined behind its body (chain.go), if any.
	txns [2]smtpwire.ClientTxn
	cur  int

	watched   context.Context // the context the session's I/O is cut short by (watch)
	stopWatch func() bool     // undoes watch's context.AfterFunc

	domain   string // the destination of the last transaction (or the one the session was opened for), for traces
	traceGen uint32 // trace.Hub.Gen when the session last checked whether it is traced (trace.go)
	traceID  uint32 // the session's number in traces; 0: not traced
}

// sessionError is a failure to get a usable session (connect, greeting,
// EHLO, STARTTLS). The Manager then tries the next address. It wraps a
// smtpwire.Error (the one error model, found by errors.As): its Reply is
// what the recipients get if no other host works, its Cause what went
// wrong, for the log.
type sessionError struct {
	refusal smtpwire.Error
	stage   string // "connect", "greeting", "EHLO", "STARTTLS"
	// tlsFailed: the STARTTLS command or handshake failed; in the
	// opportunistic modes the Manager retries this address in the clear.
	tlsFailed bool
	// server is the server's own refusal (greeting or EHLO), if any.
	server smtpwire.Reply
	// local is the address connected from (zero when no connection).
	local netip.Addr
	// tlsResult is, for a failure that TLS or a TLS policy made, its
	// result type (Outcome.TLSResultType); "" otherwise.
	tlsResult string
}

func (e *sessionError) Error() string {
	if e.refusal.Cause == nil {
		return e.stage + ": " + e.refusal.Reply.String()
	}
	return e.stage + ": " + e.refusal.Cause.Error()
}

// Unwrap returns the smtpwire.Error, whose Unwrap gives the cause.
func (e *sessionError) Unwrap() error { return &e.refusal }

// Extensions returns what the server announced in its (last) EHLO reply.
func (c *Client) Extensions() smtpwire.Extensions { return c.ext }

// Peer returns the server address.
func (c *Client) Peer() netip.AddrPort { return c.peer }

// TLS returns the TLS state after STARTTLS, or nil for a clear session.
func (c *Client) TLS() *tls.ConnectionState { return c.tls }

// dial opens a session with addr (an IP:port; host is the MX name used for
// TLS server name checks): connect, read the greeting, EHLO (HELO when EHLO
// is refused with 5xx, RFC 5321 §3.2) and, when tryTLS is set and the
// policy allows, STARTTLS (RFC 3207) followed by a new EHLO.
func dial(ctx context.Context, cfg *dialConfig, host string, addr netip.AddrPort, tryTLS bool, domain string) (*Client, *sessionError) {
	d := net.Dialer{Timeout: cfg.connectTimeout}
	if cfg.localAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.localAddr.AsSlice(), Zone: cfg.localAddr.Zone()}
	}
	conn, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		// 4.4.1: "No answer from host" (RFC 3463 §3.5).
		return nil, &sessionError{stage: "connect", refusal: smtpwire.Error{Reply: localReply(451, "4.4.1", fmt.Sprintf("cannot connect to %s [%s]: %s", host, addr, errText(err))), Cause: err}}
	}
	c := &Client{cfg: cfg, conn: conn, host: host, peer: addr, source: cfg.sourceName, local: localAddrOf(conn)}
	c.rr.reset(conn)
	c.w = bufio.NewWriterSize(conn, 32<<10)
	c.checkTrace(domain, true)

	// A context that ends while the session is being set up aborts it.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	serr := (*sessionError)(nil)
	if cfg.implicitTLS {
		serr = c.implicitHandshake(ctx)
	}
	if serr == nil {
		serr = c.hello(ctx, tryTLS)
	}
	if serr == nil && cfg.auth != nil {
		serr = c.login()
	}
	if serr != nil {
		if c.traceID != 0 {
			c.publish(trace.Error, serr.Error())
		}
		conn.Close()
		serr.local = c.local
		c.publish(trace.Close, "closed")
		return nil, serr
	}
	return c, nil
}

func (c *Client) hello(ctx context.Context, tryTLS bool) *sessionError {
	// RFC 5321 §4.5.3.2.1: wait for the greeting.
	c.conn.SetDeadline(time.Now().Add(c.cfg.commandTimeout))
	greet, err := c.rr.read()
	if err != nil {
		return c.ioError("greeting", err)
	}
	c.traceReply(greet)
	if greet.Code != 220 {
		c.quitQuietly()
		// The host refused the session (RFC 5321 §3.1); another MX may not.
		return &sessionError{stage: "greeting", server: greet, refusal: smtpwire.Error{Reply: localReply(451, "4.4.0",
			fmt.Sprintf("%s [%s] refused the session: %s", c.host, c.peer, greet.String()))}}
	}
	if serr := c.ehlo(); serr != nil {
		return serr
	}
	mode := c.cfg.tls.Mode
	if mode == TLSDisabled || !tryTLS || c.tls != nil {
		return nil
	}
	if !c.ext.StartTLS {
		if mode == TLSRequired {
			c.quitQuietly()
			// 4.7.10 "Encryption needed" (RFC 5248 registry).
			return &sessionError{stage: "STARTTLS", refusal: smtpwire.Error{Reply: localReply(451, "4.7.10",
				fmt.Sprintf("TLS required but %s [%s] does not offer STARTTLS", c.host, c.peer))}}
		}
		return nil
	}
	return c.startTLS(ctx)
}

// ehlo sends EHLO, falling back to HELO when the server refuses EHLO with a
// 5xx (an old server that does not know it).
func (c *Client) ehlo() *sessionError {
	c.conn.SetDeadline(time.Now().Add(c.cfg.commandTimeout))
	c.scratch = append(append(append(c.scratch[:0], "EHLO "...), c.cfg.ehloName...), "\r\n"...)
	rep, err := c.roundTrip(c.scratch)
	if err != nil {
		return c.ioError("EHLO", err)
	}
	if rep.Code == 250 {
		c.esmtp = true
		c.ext = smtpwire.ParseEHLO(rep)
		return nil
	}
	if rep.Code >= 500 {
		c.scratch = append(append(append(c.scratch[:0], "HELO "...), c.cfg.ehloName...), "\r\n"...)
		rep, err = c.roundTrip(c.scratch)
		if err != nil {
			return c.ioError("HELO", err)
		}
		if rep.Code == 250 {
			c.esmtp = false
			c.ext = smtpwire.Extensions{}
			return nil
		}
	}
	c.quitQuietly()
	return &sessionError{stage: "EHLO", server: rep, refusal: smtpwire.Error{Reply: localReply(451, "4.4.0",
		fmt.Sprintf("%s [%s] refused EHLO/HELO: %s", c.host, c.peer, rep.String()))}}
}

// startTLS runs STARTTLS (RFC 3207 §4) and the new EHLO that must follow it
// (§4.2: the client discards what it knew of the server).
func (c *Client) startTLS(ctx context.Context) *sessionError {
	rep, err := c.roundTrip([]byte("STARTTLS\r\n"))
	if err != nil {
		return c.ioError("STARTTLS", err)
	}
	if rep.Code != 220 {
		c.quitQuietly()
		return &sessionError{stage: "STARTTLS", tlsFailed: true, refusal: smtpwire.Error{Reply: localReply(451, "4.7.10",
			fmt.Sprintf("%s [%s] refused STARTTLS: %s", c.host, c.peer, rep.String()))}}
	}
	if c.rr.buffered() > 0 {
		// Bytes after the 220 were sent before the handshake and could have
		// been injected by a man in the middle (the client side of
		// CVE-2011-0411); refuse to go on rather than act on them.
		return &sessionError{stage: "STARTTLS", tlsFailed: true, refusal: smtpwire.Error{Reply: localReply(451, "4.7.10",
			fmt.Sprintf("%s [%s] sent data after 220 to STARTTLS", c.host, c.peer)), Cause: errDataAfterSTARTTLS}}
	}
	if err := c.handshake(ctx); err != nil {
		return &sessionError{stage: "STARTTLS", tlsFailed: true, refusal: smtpwire.Error{Reply: localReply(451, "4.7.10",
			fmt.Sprintf("TLS handshake with %s [%s] failed: %s", c.host, c.peer, errText(err))), Cause: err}}
	}
	return c.ehlo()
}

// handshake runs the TLS handshake over the connection (after STARTTLS, or
// first thing for implicit TLS) under the pool's policy, resuming a
// session of the same host when the Manager's cache holds one, and then
// talks over TLS.
func (c *Client) handshake(ctx context.Context) error {
	tc := tls.Client(c.conn, c.cfg.tls.config(strings.TrimSuffix(c.host, "."), c.peer.Port(), c.cfg.sessions))
	hctx, cancel := context.WithTimeout(ctx, c.cfg.commandTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		return err
	}
	st := tc.ConnectionState()
	c.tls = &st
	if c.cfg.onHandshake != nil {
		c.cfg.onHandshake(st.DidResume)
	}
	if c.traceID != 0 {
		c.publish(trace.TLS, tlsTraceText(&st))
	}
	c.conn = tc
	c.rr.reset(tc)
	c.w.Reset(tc)
	return nil
}

// roundTrip writes cmd, flushes and reads one reply.
func (c *Client) roundTrip(cmd []byte) (smtpwire.Reply, error) {
	c.traceCommands(cmd)
	if _, err := c.w.Write(cmd); err != nil {
		return smtpwire.Reply{}, err
	}
	if err := c.w.Flush(); err != nil {
		return smtpwire.Reply{}, err
	}
	r, err := c.rr.read()
	if err == nil {
		c.traceReply(r)
	}
	return r, err
}

func (c *Client) ioError(stage string, err error) *sessionError {
	return &sessionError{stage: stage, refusal: smtpwire.Error{Reply: localReply(451, "4.4.2",
		fmt.Sprintf("%s [%s] %s failed: %s", c.host, c.peer, stage, errText(err))), Cause: err}}
}

// quitQuietly sends QUIT without waiting long for the answer; used when
// giving up on a session.
func (c *Client) quitQuietly() {
	c.conn.SetDeadline(time.Now().Add(time.Second))
	c.traceCommands([]byte("QUIT\r\n"))
	c.w.WriteString("QUIT\r\n")
	c.w.Flush()
}

// Close ends the session politely (QUIT, RFC 5321 §4.1.1.10) unless it is
// broken, and closes the connection.
func (c *Client) Close() error {
	c.unwatch()
	if !c.broken {
		c.conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.roundTrip([]byte("QUIT\r\n")); err != nil {
			c.broken = true
		}
	}
	err := c.conn.Close()
	c.publish(trace.Close, "closed")
	return err
}

// errText shortens network errors for reply text.
func errText(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// tlsCipherName returns the IANA name of a cipher suite.
func tlsCipherName(id uint16) string { return tls.CipherSuiteName(id) }
