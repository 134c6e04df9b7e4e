package inbound

import (
	"crypto/tls"
	"time"

	"gannet/engine/logrec"
	"gannet/msgheader"
)

// ReceivedHeader builds the trace field the spool prepends to the message
// (RFC 5321 §4.4, built by msgheader.Trace). The protocol name follows
// RFC 3848 and RFC 6531 §3.7.3 (Envelope.Protocol): ESMTP, with "S" when the
// session was under TLS and "A" when the client authenticated; SMTP after
// HELO. A TLS session adds a comment with its version and cipher suite, as
// Postfix and Exim write it.
func (in *Incoming) ReceivedHeader(id string, now time.Time) []byte {
	t := msgheader.Trace{Peer: in.Peer.Addr(), By: in.Hostname, With: "ESMTP", ID: id, Time: now}
	if env := in.Envelope; env != nil {
		t.Helo, t.With = env.Helo, env.Protocol()
		if len(env.Rcpts) == 1 {
			t.For = env.Rcpts[0].Addr
		}
	}
	if in.TLS != nil {
		t.TLS = logrec.TLSVersion(in.TLS.Version) + " " + tls.CipherSuiteName(in.TLS.CipherSuite)
	}
	return t.AppendReceived(make([]byte, 0, 256))
}
