package tlsrpt

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// MailReport is what the report message of §5.3 is made of.
type MailReport struct {
	From      string    // the envelope and From: address (Gannet's tlsrpt_sender)
	To        string    // the mailto: address
	Domain    string    // the policy domain (TLS-Report-Domain)
	Submitter string    // the reporting domain (TLS-Report-Submitter)
	ReportID  string    // the report's report-id
	Date      time.Time // the Date: field
	MessageID string    // without angle brackets
	Boundary  string    // the multipart boundary; must not occur in the parts
	FileName  string    // the attachment's name (Report.FileName)
	Gzip      []byte    // the gzip'd JSON report
}

// BuildMail returns the report message (RFC 8460 §5.3): a multipart/report
// with report-type "tlsrpt", a short human-readable part and the gzip'd
// report as an application/tlsrpt+gzip attachment, with the Subject,
// TLS-Report-Domain and TLS-Report-Submitter fields the section asks for.
// Lines end in CRLF; fields are folded below 78 characters where they can
// be.
func BuildMail(m *MailReport) ([]byte, error) {
	for _, v := range []string{m.From, m.To, m.Domain, m.Submitter, m.ReportID, m.MessageID, m.Boundary, m.FileName} {
		if strings.ContainsAny(v, "\r\n\"") {
			return nil, fmt.Errorf("tlsrpt: CR, LF or quote in a report message field %q", v)
		}
	}
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("From: <%s>", m.From)
	w("To: <%s>", m.To)
	w("Date: %s", m.Date.Format(time.RFC1123Z))
	w("Message-ID: <%s>", m.MessageID)
	// §5.3: "Report Domain: {} Submitter: {} Report-ID: {}".
	w("Subject: Report Domain: %s", m.Domain)
	w(" Submitter: %s", m.Submitter)
	w(" Report-ID: <%s>", m.ReportID)
	w("TLS-Report-Domain: %s", m.Domain)
	w("TLS-Report-Submitter: %s", m.Submitter)
	w("Auto-Submitted: auto-generated")
	// RFC 8689 §5: a report about TLS problems should get through them;
	// this asks the relays on the way not to hold it to a TLS policy.
	w("TLS-Required: No")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=\"tlsrpt\";")
	w("\tboundary=\"%s\"", m.Boundary)
	w("")
	w("This is a multipart message in MIME format.")
	w("")
	w("--%s", m.Boundary)
	w("Content-Type: text/plain; charset=\"us-ascii\"")
	w("Content-Transfer-Encoding: 7bit")
	w("")
	w("This is an aggregate TLS report from %s", m.Submitter)
	w("for the policy domain %s (RFC 8460).", m.Domain)
	w("")
	w("--%s", m.Boundary)
	w("Content-Type: application/tlsrpt+gzip")
	w("Content-Transfer-Encoding: base64")
	w("Content-Disposition: attachment;")
	w("\tfilename=\"%s\"", m.FileName)
	w("")
	enc := base64.StdEncoding.EncodeToString(m.Gzip)
	for len(enc) > 76 {
		w("%s", enc[:76])
		enc = enc[76:]
	}
	if enc != "" {
		w("%s", enc)
	}
	w("")
	w("--%s--", m.Boundary)
	return b.Bytes(), nil
}
