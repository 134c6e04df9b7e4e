package inbound

import (
	"context"
	"crypto/tls"
	"net/netip"

	"gannet/smtpwire"
)

// Acceptor is what the listener needs from the rest of the engine: a place to
// make messages durable. It is declared here, by its consumer.
type Acceptor interface {
	// Accept makes the message durable and returns the reply for the final
	// "." ("250 2.0.0 OK id=<ID>") or a refusal (452 4.3.1 when the spool
	// cannot take it); a message with in.Feedback set is consumed instead. It runs on a worker goroutine, never on an event loop,
	// and may block until the spool has synced. in.Body belongs to the
	// Acceptor from then on. The engine prepends in.ReceivedHeader.
	Accept(ctx context.Context, in *Incoming) smtpwire.Reply
	// CheckMail is called at MAIL FROM, on the event loop, so it must not
	// block: nil accepts, a reply refuses (queue full → 452 4.3.1).
	// in.Envelope holds the sender and the session facts; no recipients yet.
	CheckMail(in *Incoming) *smtpwire.Reply
}

// RcptChecker is an Acceptor that also judges each recipient at RCPT TO,
// after the relay control: nil accepts, a reply refuses that recipient
// (the suppression list: 550 5.7.1). It is called on the event loop and
// must not block. in is the transaction as far as MAIL FROM (as for
// CheckMail; it must not be kept), rcpt the recipient's address.
type RcptChecker interface {
	CheckRcpt(in *Incoming, rcpt string) *smtpwire.Reply
}

// BodyReleaser is an Acceptor that is done with in.Body when Accept returns
// (it copied what it keeps). The server then gives the buffer back to its
// pool for a later message, instead of leaving one body-sized buffer per
// message to the garbage collector. An Acceptor without it keeps in.Body.
type BodyReleaser interface {
	ReleasesBody() bool
}

// Incoming is one received message (or, for CheckMail, the transaction as
// far as MAIL FROM) with the facts about the session that carried it.
type Incoming struct {
	Listener string         // ListenerConfig.Name
	Hostname string         // ListenerConfig.Hostname, the "by" of Received
	Peer     netip.AddrPort // the client
	Local    netip.AddrPort // our side of the connection
	Envelope *smtpwire.Envelope
	Body     []byte // dot-unstuffed, CRLF line ends, no Received header yet
	// TLS is the session's TLS state; nil for plaintext sessions.
	TLS *tls.ConnectionState
	// AuthUser and Tenant are what the Authenticator returned for the
	// session's successful AUTH; empty when the client did not authenticate.
	AuthUser string
	Tenant   string
	// Greeting is what the Greeter returned for the session, the last time
	// it ran before this message; nil without a Greeter.
	Greeting any
	// Feedback: the recipients are bounce or FBL addresses
	// (ListenerConfig.Feedback, Options.FeedbackDomain): the Acceptor
	// consumes the message instead of relaying it. A transaction's
	// recipients are all feedback or all not (checkRcpt).
	Feedback bool
}

// SessionInfo names the session an Authenticator is asked about:
// SessionFrom(ctx) returns it.
type SessionInfo struct {
	Listener string
	Peer     netip.AddrPort
}

type sessionKey struct{}

// SessionFrom returns the session of an Authenticate call's context.
func SessionFrom(ctx context.Context) (SessionInfo, bool) {
	s, ok := ctx.Value(sessionKey{}).(SessionInfo)
	return s, ok
}

// Authenticator checks AUTH credentials for the listener (RFC 4954). It runs
// on a worker goroutine: a password hash may take milliseconds. For CRAM-MD5,
// cred.VerifyCRAMMD5(secret) checks the digest. ok false refuses with
// 535 5.7.8; user names the account, tenant its tenant (may be "").
type Authenticator interface {
	Authenticate(ctx context.Context, cred smtpwire.AuthCredentials) (user, tenant string, ok bool)
}

// Greeter runs a policy at the session's greeting: after each EHLO or HELO,
// and again after a successful AUTH, so that it sees the session's
// tenant. It runs on a worker goroutine; meanwhile the session's commands
// wait. state is kept by the session and handed to the Acceptor with each
// of its messages (Incoming.Greeting); a non-nil refuse is the reply every
// later MAIL command of the session gets (a 421 also ends the session).
type Greeter interface {
	Greet(ctx context.Context, g *Greeting) (state any, refuse *smtpwire.Reply)
}

// Greeting is what a Greeter knows of the session.
type Greeting struct {
	Listener string
	Helo     string // the EHLO/HELO name
	Peer     netip.AddrPort
	AuthUser string // "" before AUTH
	Tenant   string // the AUTH account's tenant, "" for none
}
