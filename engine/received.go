package engine

import (
	"net/netip"
	"time"

	"gannet/msgheader"
)

// httpReceived builds the trace field of a message injected over HTTP
// (RFC 5321 §4.4 form, "with HTTP" as the protocol; the same builder as
// SMTP, so an IPv6 client is written "[IPv6:…]" as RFC 5321 §4.1.3 wants).
func httpReceived(peer netip.Addr, host, id string, now time.Time) []byte {
	t := msgheader.Trace{Peer: peer, By: host, With: "HTTP", ID: id, Time: now}
	return t.AppendReceived(make([]byte, 0, 192))
}
