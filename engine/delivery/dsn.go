package delivery

import (
	"bytes"
	"cmp"
	"fmt"
	"strings"
	"time"

	"gannet/engine/outbound"
	"gannet/msgheader"
	"gannet/queue"
	"gannet/smtpwire"
)

// DSN actions (RFC 3464 §2.3.3) Gannet reports.
const (
	actionFailed  = "failed"
	actionDelayed = "delayed"
	actionRelayed = "relayed"
)

// dsnRecipient is one recipient reported in a delivery status
// notification.
type dsnRecipient struct {
	addr    string
	reply   smtpwire.Reply
	expired bool
	remote  string // MX host that answered; "" when none did
	action  string // actionFailed, actionDelayed or actionRelayed
	orcpt   string // ORCPT (RFC 3461 §4.2) as "type;address"; "" when none
	until   time.Time
}

// dsnInfo is what a delivery status notification says about the original
// message.
type dsnInfo struct {
	id, from     string
	arrival, now time.Time
	reportingMTA string
	headers      []byte // the original header section (may be nil)
	rcpts        []dsnRecipient
	envid        string // ENVID (RFC 3461 §4.4); "" when none
	// full is the whole original message when a failure is reported and
	// the sender asked for it with RET=FULL (RFC 3461 §4.3); nil: the
	// header section is returned.
	full []byte
	// requested: a recipient's NOTIFY asked for this DSN (Options.SendDSN).
	requested bool
}

// buildDSN writes a delivery status notification (RFC 3464) as a
// multipart/report message (RFC 6522) with three parts: a human-readable
// explanation, the message/delivery-status fields — per-message (§2.2)
// then per-recipient (§2.3) — and the original message: its header
// section as text/rfc822-headers, or all of it as message/rfc822 for a
// failure with RET=FULL (RFC 3461 §4.3). It goes to the envelope sender
// from the null reverse-path; Auto-Submitted (RFC 3834 §5) marks it as
// automatic.
func buildDSN(d *dsnInfo) []byte {
	mta := d.reportingMTA
	if mta == "" {
		mta = "localhost"
	}
	var failed, delayed, relayed bool
	for _, r := range d.rcpts {
		switch r.action {
		case actionDelayed:
			delayed = true
		case actionRelayed:
			relayed = true
		default:
			failed = true
		}
	}
	subject := "Undelivered Mail Returned to Sender"
	switch {
	case failed:
	case delayed:
		subject = "Delayed Mail (still being retried)"
	case relayed:
		subject = "Successful Mail Delivery Report"
	}
	boundary := "=_gannet_dsn_" + d.id
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...); b.WriteString("\r\n") }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", mta)
	w("To: <%s>", d.from)
	w("Subject: %s", subject)
	w("Date: %s", d.now.Format(time.RFC1123Z))
	w("Message-ID: <%s.%d.dsn@%s>", d.id, d.now.UnixNano(), mta)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;")
	w("\tboundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: 8bit")
	w("")
	w("This is the mail system at host %s.", mta)
	if failed {
		w("")
		w("Your message %s could not be delivered to one or more recipients:", d.id)
		w("")
		for _, r := range d.rcpts {
			if r.action != actionFailed {
				continue
			}
			why := oneLine(r.reply.String())
			if r.expired {
				why = "gave up after the maximum retry time; last reply: " + why
			}
			w("<%s>: %s", r.addr, why)
		}
	}
	if delayed {
		w("")
		w("Your message %s has not been delivered yet to these recipients; delivery will be retried:", d.id)
		w("")
		for _, r := range d.rcpts {
			if r.action == actionDelayed {
				w("<%s>: %s", r.addr, oneLine(r.reply.String()))
			}
		}
	}
	if relayed {
		w("")
		w("Your message %s was delivered to a mail server that does not send delivery", d.id)
		w("notifications; no further notification will come for these recipients:")
		w("")
		for _, r := range d.rcpts {
			if r.action == actionRelayed {
				w("<%s>: relayed to %s", r.addr, cmp.Or(r.remote, "the next server"))
			}
		}
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	// RFC 3464 §2.2: per-message fields.
	if d.envid != "" {
		w("Original-Envelope-Id: %s", xtextField(d.envid))
	}
	w("Reporting-MTA: dns; %s", mta)
	w("X-Gannet-Queue-ID: %s", d.id)
	w("Arrival-Date: %s", d.arrival.Format(time.RFC1123Z))
	for _, r := range d.rcpts {
		w("")
		// RFC 3464 §2.3: per-recipient fields.
		if typ, addr, ok := strings.Cut(r.orcpt, ";"); ok {
			w("Original-Recipient: %s;%s", typ, xtextField(addr))
		}
		w("Final-Recipient: rfc822; %s", r.addr)
		w("Action: %s", cmp.Or(r.action, actionFailed))
		w("Status: %s", dsnStatus(r))
		if r.remote != "" {
			w("Remote-MTA: dns; %s", r.remote)
		}
		if r.reply.Code != 0 {
			w("Diagnostic-Code: smtp; %s", oneLine(r.reply.String()))
		}
		w("Last-Attempt-Date: %s", d.now.Format(time.RFC1123Z))
		if r.action == actionDelayed && !r.until.IsZero() {
			w("Will-Retry-Until: %s", r.until.Format(time.RFC1123Z))
		}
	}
	w("")
	w("--%s", boundary)
	if d.full != nil {
		w("Content-Type: message/rfc822")
		w("")
		b.Write(d.full)
		if len(d.full) > 0 && !bytes.HasSuffix(d.full, []byte("\r\n")) {
			b.WriteString("\r\n")
		}
	} else {
		w("Content-Type: text/rfc822-headers")
		w("")
		b.Write(bytes.TrimRight(d.headers, "\r\n"))
		if len(d.headers) > 0 {
			b.WriteString("\r\n")
		}
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes()
}

// xtextField renders a value for a DSN field that RFC 3464 §2.2.1 and
// §2.3.1 give as xtext: as it is when it is plain printable ASCII, else
// xtext-encoded.
func xtextField(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '!' || c > '~' || c == '+' || c == '=' {
			return string(smtpwire.AppendXtext(nil, s))
		}
	}
	return s
}

// dsnStatus is the RFC 3463 status of a recipient: 2.0.0 when relayed;
// for a delay the reply's enhanced code made transient (4.0.0 without
// one); for a failure the reply's enhanced code made permanent, or 5.4.7
// ("delivery time expired") for an expiration.
func dsnStatus(r dsnRecipient) string {
	switch r.action {
	case actionRelayed:
		return "2.0.0"
	case actionDelayed:
		if e := r.reply.Enhanced; len(e) > 2 {
			return "4" + e[1:]
		}
		return "4.0.0"
	}
	if r.expired {
		return "5.4.7"
	}
	if e := r.reply.Enhanced; len(e) > 2 {
		return "5" + e[1:]
	}
	return "5.0.0"
}

// oneLine joins a reply's lines so that it fits one header field.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// maxDSNHeader bounds the original header a DSN returns (RFC 3462 §2:
// text/rfc822-headers).
const maxDSNHeader = 64 << 10

// headerOf returns the header fields of a message (msgheader.SectionEnd:
// up to the empty line, without it), at most maxDSNHeader bytes of them.
func headerOf(body []byte) []byte {
	h := body[:msgheader.SectionEnd(body)]
	if len(h) > maxDSNHeader {
		h = h[:maxDSNHeader]
	}
	return h
}

// withDSN gives env the DSN parameters of message m (RFC 3461) for the
// recipients idx, to pass on to a server that offers DSN (§6.2.1).
func withDSN(env *outbound.Envelope, m *queue.Message, idx []int) {
	env.Ret, env.EnvID = smtpwire.DSNRet(m.DSNRet), m.EnvID
	for k, i := range idx {
		rc := &m.Recipients[i]
		if rc.Notify == 0 && rc.ORcpt == "" {
			continue
		}
		if env.RcptDSN == nil {
			env.RcptDSN = make([]outbound.RcptDSN, len(idx))
		}
		env.RcptDSN[k] = outbound.RcptDSN{Notify: smtpwire.DSNNotify(rc.Notify), ORcpt: rc.ORcpt}
	}
}
