package bounce

// parseEnhanced splits an enhanced status code "class.subject.detail" (RFC
// 3463 §2: class 2, 4 or 5; subject and detail 1 to 3 digits).
func parseEnhanced(s string) (class, subject, detail int, ok bool) {
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return 0, 0, 0, false
	}
	class = int(s[0] - '0')
	rest := s[2:]
	subject, rest, ok = parseNumber(rest)
	if !ok || len(rest) == 0 || rest[0] != '.' {
		return 0, 0, 0, false
	}
	detail, rest, ok = parseNumber(rest[1:])
	if !ok || rest != "" {
		return 0, 0, 0, false
	}
	return class, subject, detail, true
}

// parseNumber reads 1 to 3 digits.
func parseNumber(s string) (n int, rest string, ok bool) {
	i := 0
	for i < len(s) && i < 4 && '0' <= s[i] && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		i++
	}
	if i == 0 || i > 3 {
		return 0, s, false
	}
	return n, s[i:], true
}

// fallback classifies a reply that no rule matched: first the reply codes
// that RFC 7504 reserves for hosts and domains taking no mail, then the
// subject and detail of the enhanced status code, then the reply code.
//
// The enhanced code is read whatever its class digit says ("552 4.2.2" is
// still a full mailbox), but only for failure classes 4 and 5.
func fallback(code int, enhanced string) Class {
	if code == 521 || code == 556 {
		// RFC 7504 §3: 521 "host does not accept mail", 556 "domain does
		// not accept mail" (as for a null MX, RFC 7505 §4.2); more specific
		// than any enhanced code sent along.
		return BadDomain
	}
	if cls, subject, detail, ok := parseEnhanced(enhanced); ok && cls != 2 {
		if c, ok := byStatus(cls, subject, detail); ok {
			return c
		}
	}
	switch {
	case code >= 400 && code < 500:
		// A 4xx reply asks to try again later (RFC 5321 §4.2.1): without
		// anything more specific, that is KumoMTA's TransientFailure,
		// "temporarily delayed".
		return TransientFailure
	case code == 552:
		// RFC 5321 §4.2.2: "Requested mail action aborted: exceeded
		// storage allocation".
		return QuotaIssues
	}
	return Uncategorized
}

// byStatus maps the subject and detail of an enhanced status code to a class
// where the meaning registered by RFC 3463 and its successors (the IANA
// "SMTP Enhanced Status Codes" registry) points to one.
func byStatus(class, subject, detail int) (Class, bool) {
	switch subject {
	case 1: // RFC 3463 §3.2, addressing status
		switch detail {
		case 1, 3, 4: // bad destination mailbox, its syntax, ambiguous
			return InvalidRecipient, true
		case 2: // bad destination system address
			return BadDomain, true
		case 6: // destination mailbox has moved, no forwarding address
			return InactiveMailbox, true
		case 7, 8: // bad sender's mailbox syntax, bad sender's system address
			return InvalidSender, true
		case 10: // recipient address has null MX (RFC 7505 §4.2)
			return BadDomain, true
		}
	case 2: // RFC 3463 §3.3, mailbox status
		switch detail {
		case 1: // mailbox disabled, not accepting messages
			return InactiveMailbox, true
		case 2: // mailbox full
			return QuotaIssues, true
		case 3: // message length exceeds administrative limit
			return QuotaIssues, true
		case 4: // mailing list expansion problem
			return InvalidRecipient, true
		}
	case 3: // RFC 3463 §3.4, mail system status
		switch detail {
		case 1: // mail system full
			return QuotaIssues, true
		case 2: // system not accepting network messages
			if class == 4 { // e.g. "shutting down": try again later
				return TransientFailure, true
			}
			return BadConfiguration, true
		case 3: // system not capable of selected features
			return ProtocolErrors, true
		case 4: // message too big for system (as KumoMTA: a size quota)
			return QuotaIssues, true
		case 5: // system incorrectly configured
			return BadConfiguration, true
		}
	case 4: // RFC 3463 §3.5, network and routing status
		switch detail {
		case 1: // no answer from host
			return NoAnswerFromHost, true
		case 2: // bad connection
			return BadConnection, true
		case 3: // directory server failure
			return DNSFailure, true
		case 4, 6: // unable to route, routing loop detected
			return RoutingErrors, true
		case 5: // mail system congestion
			return TransientFailure, true
		case 7: // delivery time expired
			return MessageExpired, true
		}
	case 5: // RFC 3463 §3.6, mail delivery protocol status
		if detail == 3 { // too many recipients
			return TooManyRecipients, true
		}
		return ProtocolErrors, true
	case 6: // RFC 3463 §3.7, message content or media status
		return ContentRelated, true
	case 7: // RFC 3463 §3.8, security or policy status
		switch detail {
		case 5, 6, 7, 8, 9, 10, 11, 12, 14: // crypto and SMTP AUTH (RFC 3463, RFC 4954 §6)
			return AuthenticationFailed, true
		case 20, 21, 22, 23, 24, 26, 29: // DKIM, SPF, multiple checks (RFC 7372), ARC (RFC 8617)
			return AuthenticationFailed, true
		case 13: // user account disabled (RFC 4954 §6)
			return InactiveMailbox, true
		case 17: // mailbox owner has changed (RFC 7293 §3.3)
			return InvalidRecipient, true
		case 18: // domain owner has changed (RFC 7293 §3.3)
			return BadDomain, true
		case 27: // sender address has null MX (RFC 7505 §4.3)
			return InvalidSender, true
		case 28: // mail flood detected
			return SpamBlock, true
		}
		// 5.7.0 other security status, 5.7.1 delivery not authorized,
		// 5.7.25 reverse DNS validation failed and the rest.
		return PolicyRelated, true
	}
	return Uncategorized, false
}
