package outbound

import (
	"bytes"
	"crypto/tls"
	"strconv"

	"gannet/engine/logrec"
	"gannet/engine/trace"
	"gannet/mailaddr"
	"gannet/smtpwire"
)

// The client side of the live traces (engine/trace, `gannet trace
// client`): a Client publishes its commands, the server's replies, the TLS
// handshake and the size of each body (never its bytes) while a trace
// subscriber's filter matches it. Outside traces the cost is one atomic
// load per transaction (checkTrace) and a zero test per exchange.

// checkTrace starts or stops tracing the session when the trace
// subscribers changed since it last looked, for mail to domain.
func (c *Client) checkTrace(domain string, fresh bool) {
	hub := c.cfg.trace
	if hub == nil {
		return
	}
	if domain != "" && domain != c.domain {
		c.domain = domain
		c.traceGen = 0 // a new domain may match other filters
	}
	gen := hub.Gen()
	if gen == c.traceGen {
		return
	}
	c.traceGen = gen
	ev := trace.Event{Side: trace.Client, Peer: c.peer, Host: c.host, Site: c.cfg.site, Domain: c.domain}
	if !hub.Wants(&ev) {
		c.traceID = 0
		return
	}
	if c.traceID != 0 {
		return
	}
	c.traceID = hub.NewSession()
	text := "connected to " + c.host + " [" + c.peer.String() + "] from " + c.conn.LocalAddr().String()
	if !fresh {
		// A pooled session first seen by this trace.
		text = "session with " + c.host + " [" + c.peer.String() + "] from " + c.conn.LocalAddr().String() +
			" (open already; " + strconv.Itoa(c.uses) + " transactions so far)"
	}
	if c.source != "" {
		text += " (egress source " + c.source + ")"
	}
	c.publish(trace.Connect, text)
	if c.tls != nil {
		c.publish(trace.TLS, tlsTraceText(c.tls))
	}
}

// publish sends one event of the session's trace.
func (c *Client) publish(kind trace.Kind, text string) {
	if c.traceID == 0 {
		return
	}
	c.cfg.trace.Publish(trace.Event{Side: trace.Client, Session: c.traceID, Kind: kind, Text: text,
		Peer: c.peer, Host: c.host, Site: c.cfg.site, Domain: c.domain})
}

// traceCommands publishes each command line of cmds.
func (c *Client) traceCommands(cmds []byte) {
	if c.traceID == 0 {
		return
	}
	for len(cmds) > 0 {
		line := cmds
		if i := bytes.IndexByte(cmds, '\n'); i >= 0 {
			line, cmds = cmds[:i+1], cmds[i+1:]
		} else {
			cmds = nil
		}
		c.publish(trace.Command, string(bytes.TrimRight(line, "\r\n")))
	}
}

// traceReply publishes a server reply, all its lines.
func (c *Client) traceReply(r smtpwire.Reply) {
	if c.traceID == 0 {
		return
	}
	c.publish(trace.Reply, string(bytes.TrimRight(r.AppendTo(nil), "\r\n")))
}

// traceBody publishes the size of a body sent, never its bytes.
func (c *Client) traceBody(n int) {
	if c.traceID == 0 {
		return
	}
	c.publish(trace.Body, strconv.Itoa(n)+" octets of message data (elided)")
}

func tlsTraceText(cs *tls.ConnectionState) string {
	s := logrec.TLSVersion(cs.Version) + " " + tls.CipherSuiteName(cs.CipherSuite)
	if cs.ServerName != "" {
		s += " server_name=" + cs.ServerName
	}
	if len(cs.PeerCertificates) > 0 {
		s += " peer_certificate=" + cs.PeerCertificates[0].Subject.CommonName
		if cs.VerifiedChains != nil {
			s += " (verified)"
		} else {
			s += " (not verified)"
		}
	}
	if cs.DidResume {
		s += " resumed"
	}
	return s
}

// envelopeDomain is the domain of env's first recipient: the destination
// a trace filter's domain is matched against.
func envelopeDomain(env *Envelope) string {
	if len(env.Rcpts) == 0 {
		return ""
	}
	return mailaddr.Domain(env.Rcpts[0])
}
