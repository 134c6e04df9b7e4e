package engine

import (
	"net/netip"
	"time"
)

// httpReceived builds the trace header of a message injected over HTTP
// (RFC 5321 §4.4 form, "with HTTP" as the protocol).
func httpReceived(peer netip.Addr, host, id string, now time.Time) []byte {
	b := make([]byte, 0, 160)
	b = append(b, "Received: from ["...)
	if peer.IsValid() {
		b = append(b, peer.Unmap().String()...)
	} else {
		b = append(b, "unknown"...)
	}
	b = append(b, "]\r\n\tby "...)
	b = append(b, host...)
	b = append(b, " with HTTP id "...)
	b = append(b, id...)
	b = append(b, ";\r\n\t"...)
	b = now.AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 -0700")
	return append(b, "\r\n"...)
}
