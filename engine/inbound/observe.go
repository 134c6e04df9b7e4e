package inbound

import (
	"bytes"
	"crypto/tls"
	"math"
	"net/netip"
	"strconv"

	"gannet/engine/logrec"
	"gannet/engine/trace"
	"gannet/smtpwire"
)

// Rejection is one 4xx or 5xx reply the server gave a client: at connect,
// or to a command. The engine logs it as a Rejection record, bounded by
// its own caps (Seq lets it cap each connection).
type Rejection struct {
	Listener string
	Peer     netip.AddrPort
	Helo     string // the last EHLO/HELO name; "" before one
	// Command is the verb the reply answers: "connect" (refused before
	// the greeting), "PROXY" (refused for its PROXY protocol header, or
	// for the lack of one: the peer is then the proxy), "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "AUTH", …,
	// "UNKNOWN" for a line that did not parse, "timeout" when the client
	// went quiet, "shutdown" when the server stopped. Never the command's
	// arguments: AUTH secrets and message data are not in it.
	Command  string
	Reply    []byte // the reply as sent, CRLF line ends; valid only during the call
	AuthUser string
	Tenant   string
	TLS      bool
	// Seq numbers the rejections of one connection from 1.
	Seq int
}

// rejected reports the refusals in reply (the bytes the session wrote for
// one command: one reply, perhaps followed by the 421 that ends the
// session) to Options.OnRejection.
func (st *conn) rejected(command string, reply []byte) {
	fn := st.l.srv.onRejection
	if fn == nil {
		return
	}
	for len(reply) > 0 {
		n := replyLen(reply)
		if reply[0] >= '4' {
			if st.rejections < math.MaxUint16 {
				st.rejections++
			}
			fn(&Rejection{Listener: st.l.name, Peer: st.peer, Helo: st.helo, Command: command,
				Reply: reply[:n], AuthUser: st.authUser, Tenant: st.tenant, TLS: st.tls != nil, Seq: int(st.rejections)})
		}
		reply = reply[n:]
	}
}

// replyLen returns the length of the first reply in b: through the line
// whose code is followed by a space (RFC 5321 §4.2.1), or all of b.
func replyLen(b []byte) int {
	off := 0
	for off < len(b) {
		eol := bytes.IndexByte(b[off:], '\n')
		if eol < 0 {
			return len(b)
		}
		line := b[off : off+eol+1]
		off += eol + 1
		if len(line) < 4 || line[3] != '-' {
			return off
		}
	}
	return off
}

// The smtpwire.Observer of the connection's session: refusals always,
// everything while a trace watches the session.

// Command publishes a command line (secrets already elided by the session).
func (st *conn) Command(line []byte) {
	st.publish(trace.Command, string(line))
}

// Data publishes the size of a message body or BDAT chunk, never its bytes.
func (st *conn) Data(octets int64) {
	st.publish(trace.Body, strconv.FormatInt(octets, 10)+" octets of message data (elided)")
}

// Reply logs refusals and publishes every reply while traced.
func (st *conn) Reply(verb string, reply []byte) {
	if verb == "" {
		verb = "timeout"
	}
	if reply[0] >= '4' {
		st.rejected(verb, reply)
	}
	if st.traceID != 0 {
		st.publish(trace.Reply, string(bytes.TrimRight(reply, "\r\n")))
	}
}

// checkTrace starts or stops tracing the session when the set of trace
// subscribers changed since it last looked: one atomic load otherwise.
func (st *conn) checkTrace() {
	hub := st.l.srv.trace
	if hub == nil {
		return
	}
	gen := uint32(hub.Gen())
	if gen == st.traceGen {
		return
	}
	st.traceGen = gen
	ev := trace.Event{Side: trace.Server, Peer: st.peer, Local: st.local, Listen: st.l.name}
	if !hub.Wants(&ev) {
		st.traceID = 0
		st.sess.SetObserver(st.observer(), false)
		return
	}
	if st.traceID != 0 {
		return
	}
	st.traceID = hub.NewSession()
	st.sess.SetObserver(st, true)
	text := "connection from " + st.peer.String() + " to " + st.local.String()
	if st.helo != "" {
		text += " (already open; EHLO " + st.helo + ")"
	}
	st.publish(trace.Connect, text)
	if st.tls != nil && st.tls.state != nil {
		st.publish(trace.TLS, tlsText(st.tls.state.Version, st.tls.state.CipherSuite, st.tls.state.ServerName))
	}
}

// observer is the session's Observer outside traces: the connection when
// refusals are logged, nil otherwise (then the session calls nothing).
func (st *conn) observer() smtpwire.Observer {
	if st.l.srv.onRejection == nil {
		return nil
	}
	return st
}

// publishGreeting publishes the greeting of a traced session.
func (st *conn) publishGreeting(g []byte) {
	if st.traceID == 0 {
		return
	}
	st.publish(trace.Reply, string(bytes.TrimRight(g, "\r\n")))
}

// publish sends one event of the session's trace. Callers that build
// text test traceID first, so that an untraced session builds nothing.
func (st *conn) publish(kind trace.Kind, text string) {
	if st.traceID == 0 {
		return
	}
	st.l.srv.trace.Publish(trace.Event{Side: trace.Server, Session: st.traceID, Kind: kind, Text: text,
		Peer: st.peer, Local: st.local, Listen: st.l.name})
}

// tlsText describes a TLS session for a trace.
func tlsText(version, cipher uint16, serverName string) string {
	s := logrec.TLSVersion(version) + " " + tls.CipherSuiteName(cipher)
	if serverName != "" {
		s += " server_name=" + serverName
	}
	return s
}
