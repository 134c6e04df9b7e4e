package dkim

import (
	"net/mail"
	"strings"

	"gannet/mailaddr"
	"gannet/msgheader"
)

// HeaderFromDomain returns the lower-cased domain of the first address in the
// message's From header field (RFC 5322 §3.6.2), the domain DMARC aligns DKIM
// with, or "" when there is no From field or no address in it. msg may be the
// whole message or only its header. Folded values are unfolded; RFC 2047
// encoded words and UTF-8 display names (RFC 6532) are allowed.
func HeaderFromDomain(msg []byte) string {
	sc := msgheader.NewScanner(msg)
	found := false
	for sc.Next() {
		if found = sc.Field().Is("From"); found {
			break
		}
	}
	if !found {
		return ""
	}
	v := sc.Field().Unfolded()
	if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
		return mailaddr.Domain(list[0].Address)
	}
	// Not RFC 5322 syntax: take the first "@domain" there is.
	at := strings.IndexByte(v, '@')
	if at < 0 {
		return ""
	}
	d := v[at+1:]
	if end := strings.IndexAny(d, "> \t,;)\"<"); end >= 0 {
		d = d[:end]
	}
	return normDomain(d)
}
