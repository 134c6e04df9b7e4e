package mailaddr

import "strings"

// Fold returns the form in which two spellings of one mailbox compare
// equal for lists kept about people rather than for delivery — the
// suppression list, erasure requests: angle brackets and surrounding
// space removed, the local part lower-cased (RFC 5321 §2.4 lets a server
// tell "Bob" from "bob", but no mail system in use does, and a list that
// did would let mail through to an address that asked for none), and the
// domain in canonical form (CanonicalDomain). It never changes the
// address a message is delivered to. It does not allocate when addr is
// already folded.
func Fold(addr string) string {
	addr = strings.TrimSpace(addr)
	if len(addr) >= 2 && addr[0] == '<' && addr[len(addr)-1] == '>' {
		addr = addr[1 : len(addr)-1]
	}
	if canonicalASCII(addr) {
		return strings.TrimRight(addr, ".")
	}
	local, domain := Split(addr)
	d := CanonicalDomain(domain)
	if i := strings.LastIndexByte(addr, '@'); i < 0 {
		return strings.ToLower(local)
	}
	return strings.ToLower(local) + "@" + d
}
