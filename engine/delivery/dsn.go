package delivery

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"gannet/msgheader"
	"gannet/smtpwire"
)

// dsnRecipient is one failed recipient reported in a bounce message.
type dsnRecipient struct {
	addr    string
	reply   smtpwire.Reply
	expired bool
	remote  string // MX host that answered; "" when none did
}

// dsnInfo is what a bounce message says about the original message.
type dsnInfo struct {
	id, from     string
	arrival, now time.Time
	reportingMTA string
	headers      []byte // the original header section (may be nil)
	rcpts        []dsnRecipient
}

// buildDSN writes a delivery status notification (RFC 3464) as a
// multipart/report message (RFC 6522) with three parts: a human-readable
// explanation, the message/delivery-status fields — per-message (§2.2)
// then per-recipient (§2.3) — and the original header section as
// text/rfc822-headers. It goes to the envelope sender from the null
// reverse-path; Auto-Submitted (RFC 3834 §5) marks it as automatic.
func buildDSN(d *dsnInfo) []byte {
	mta := d.reportingMTA
	if mta == "" {
		mta = "localhost"
	}
	boundary := "=_gannet_dsn_" + d.id
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...); b.WriteString("\r\n") }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", mta)
	w("To: <%s>", d.from)
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: %s", d.now.Format(time.RFC1123Z))
	w("Message-ID: <%s.dsn@%s>", d.id, mta)
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
	w("")
	w("Your message %s could not be delivered to one or more recipients:", d.id)
	w("")
	for _, r := range d.rcpts {
		why := oneLine(r.reply.String())
		if r.expired {
			why = "gave up after the maximum retry time; last reply: " + why
		}
		w("<%s>: %s", r.addr, why)
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	// RFC 3464 §2.2: per-message fields.
	w("Reporting-MTA: dns; %s", mta)
	w("X-Gannet-Queue-ID: %s", d.id)
	w("Arrival-Date: %s", d.arrival.Format(time.RFC1123Z))
	for _, r := range d.rcpts {
		w("")
		// RFC 3464 §2.3: per-recipient fields.
		w("Final-Recipient: rfc822; %s", r.addr)
		w("Action: failed")
		w("Status: %s", dsnStatus(r))
		if r.remote != "" {
			w("Remote-MTA: dns; %s", r.remote)
		}
		if r.reply.Code != 0 {
			w("Diagnostic-Code: smtp; %s", oneLine(r.reply.String()))
		}
		w("Last-Attempt-Date: %s", d.now.Format(time.RFC1123Z))
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("")
	b.Write(bytes.TrimRight(d.headers, "\r\n"))
	if len(d.headers) > 0 {
		b.WriteString("\r\n")
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes()
}

// dsnStatus is the RFC 3463 status of a failed recipient: the reply's
// enhanced code made permanent, or 5.4.7 ("delivery time expired") for an
// expiration.
func dsnStatus(r dsnRecipient) string {
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
