package feedback

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"gannet/msgheader"
)

// Kind says what a report is.
type Kind uint8

// The kinds of report.
const (
	// DSN is a delivery status notification (RFC 3464): a
	// message/delivery-status part (or message/global-delivery-status,
	// RFC 6533 §6).
	DSN Kind = iota + 1
	// ARF is an abuse feedback report (RFC 5965): a message/feedback-report
	// part.
	ARF
)

// String names the kind as the log records do.
func (k Kind) String() string {
	switch k {
	case DSN:
		return "dsn"
	case ARF:
		return "arf"
	}
	return "none"
}

// Bounds on what Parse reads of one message.
const (
	MaxParts      = 64   // MIME parts looked at, all levels together
	MaxDepth      = 4    // levels of multipart nesting
	MaxRecipients = 1000 // per-recipient groups of a DSN (and Original-Rcpt-To of an ARF)
	maxFieldLen   = 4096 // a field value longer than this is cut
)

// ErrNotReport is returned for a message that holds neither a
// message/delivery-status nor a message/feedback-report part: an
// auto-reply, a human answer, a bounce in a vendor's own text format.
var ErrNotReport = errors.New("not a delivery status notification (RFC 3464) or feedback report (RFC 5965)")

// ErrMalformed wraps the reason a message that claims to be a report
// cannot be read (a multipart without its boundary, a broken part).
var ErrMalformed = errors.New("malformed report")

// RefHeader is the header field Gannet adds to each message it sends, and
// which reports quote back: its value is a token made by Key.Seal.
const RefHeader = "X-Gannet-Ref"

// Report is what Parse found in a DSN or a feedback report.
type Report struct {
	Kind Kind

	// ReportingMTA is the MTA that made the report: the Reporting-MTA
	// field of a DSN (RFC 3464 §2.2.2, mandatory) or of an ARF report
	// (RFC 5965 §3.2, optional), without its type ("dns; mx.example" →
	// "mx.example").
	ReportingMTA string
	// OriginalEnvelopeID is Original-Envelope-Id (RFC 3464 §2.2.1,
	// RFC 5965 §3.2): the ENVID the original message was sent with.
	OriginalEnvelopeID string
	// ArrivalDate is Arrival-Date as written (RFC 3464 §2.2.5, RFC 5965 §3.2).
	ArrivalDate string

	// Recipients are a DSN's per-recipient groups (RFC 3464 §2.3), in
	// order; at most MaxRecipients.
	Recipients []Recipient

	// The fields of a feedback report (RFC 5965 §3.1, §3.2).
	FeedbackType     string   // Feedback-Type, lower case: "abuse", "fraud", "virus", "other", "not-spam", "auth-failure" (RFC 6591), "opt-out" (draft), …
	UserAgent        string   // User-Agent
	Version          string   // Version
	SourceIP         string   // Source-IP
	OriginalMailFrom string   // Original-Mail-From, without angle brackets
	OriginalRcptTo   []string // Original-Rcpt-To, each without angle brackets
	ReportedDomain   []string // Reported-Domain
	Incidents        string   // Incidents

	// OriginalHeaders is the header section of the returned message (the
	// text/rfc822-headers or message/rfc822 part, RFC 6522 §3 and RFC 3462);
	// nil when the report returned none.
	OriginalHeaders []byte
	// Ref is the value of the X-Gannet-Ref field of the returned header
	// section, or, when the report has no such part, of the first line of
	// the message that starts with "X-Gannet-Ref:" (reporters that quote
	// the header in their text); "" when there is none. It is not checked:
	// Key.Open does that.
	Ref string
}

// Recipient is one per-recipient group of a DSN (RFC 3464 §2.3).
type Recipient struct {
	// FinalRecipient is Final-Recipient (§2.3.2, mandatory) without its
	// address type ("rfc822; a@b.example" → "a@b.example") and angle
	// brackets; OriginalRecipient is Original-Recipient (§2.3.1).
	FinalRecipient    string
	OriginalRecipient string
	// Action is Action (§2.3.3), lower case: "failed", "delayed",
	// "delivered", "relayed" or "expanded".
	Action string
	// Status is the status code of Status (§2.3.4, RFC 3463), "5.1.1",
	// without a trailing comment.
	Status string
	// RemoteMTA is Remote-MTA (§2.3.5) without its type.
	RemoteMTA string
	// DiagnosticType and Diagnostic split Diagnostic-Code (§2.3.6):
	// "smtp; 550 5.1.1 no such user" → "smtp", "550 5.1.1 no such user"
	// (unfolded). Code is the reply code that starts the diagnostic of
	// type smtp, 0 when there is none.
	DiagnosticType string
	Diagnostic     string
	Code           int
}

// Permanent reports whether the group says delivery failed for good: the
// action is "failed" (or absent) and the status class is 5 (RFC 3463 §3.1).
func (r *Recipient) Permanent() bool {
	return (r.Action == "failed" || r.Action == "") && strings.HasPrefix(r.Status, "5.")
}

// Parse reads msg, a whole received message (header section and body),
// as a DSN or a feedback report. It returns an error wrapping ErrNotReport
// for a message that is neither, and one wrapping ErrMalformed for a
// multipart message without a boundary or without any part, so that no
// report part could be looked for. A broken nested part is skipped.
func Parse(msg []byte) (*Report, error) {
	ct, ok := msgheader.Get(msg, "Content-Type")
	if !ok {
		return nil, fmt.Errorf("%w: no Content-Type (a report is multipart/report, RFC 6522 §3)", ErrNotReport)
	}
	var p parser
	cte, _ := msgheader.Get(msg, "Content-Transfer-Encoding")
	err := p.entity(ct, cte, msg[msgheader.BodyStart(msg):], 0)
	if p.r.Kind == 0 {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: the message is %s", ErrNotReport, mediaType(ct))
	}
	r := &p.r
	if r.Ref == "" {
		r.Ref = findRef(msg)
	}
	return r, nil
}

// parser walks the MIME tree of one message.
type parser struct {
	parts int // parts seen, all levels together (MaxParts)
	r     Report
}

// entity handles one MIME entity of type ct (a Content-Type value) whose
// decoded content is body.
func (p *parser) entity(ct, cte string, body []byte, depth int) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = mediaType(ct)
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= MaxDepth {
			return nil
		}
		boundary := params["boundary"]
		if boundary == "" {
			return fmt.Errorf("%w: %s without a boundary parameter (RFC 2046 §5.1.1)", ErrMalformed, mt)
		}
		return p.multipart(boundary, decode(cte, body), depth+1)
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		if p.r.Kind == 0 {
			p.r.Kind = DSN
			p.deliveryStatus(decode(cte, body))
		}
	case mt == "message/feedback-report":
		if p.r.Kind == 0 {
			p.r.Kind = ARF
			p.feedbackReport(decode(cte, body))
		}
	case mt == "text/rfc822-headers" || mt == "message/rfc822" || mt == "message/global" ||
		mt == "message/global-headers" || mt == "text/rfc822" || mt == "text/rfc822-header":
		if p.r.Kind != 0 && p.r.OriginalHeaders == nil {
			p.r.OriginalHeaders = msgheader.Section(decode(cte, body))
			if v, ok := msgheader.Get(p.r.OriginalHeaders, RefHeader); ok {
				p.r.Ref = v
			}
		}
	}
	return nil
}

// mediaType returns the media type of a Content-Type value, lower case.
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt
}

// multipart walks the parts of a multipart body (RFC 2046 §5.1). The
// parts are split at their delimiter lines here rather than with
// mime/multipart, whose header reader refuses a whole message over one
// sloppy part header (a folded parameter without its leading white space,
// common in Exchange's reports); a part's header section is read with
// msgheader, which keeps going.
func (p *parser) multipart(boundary string, body []byte, depth int) error {
	parts := splitParts(body, boundary)
	if len(parts) == 0 {
		return fmt.Errorf("%w: no part delimited by %q (RFC 2046 §5.1.1)", ErrMalformed, "--"+boundary)
	}
	for _, part := range parts {
		if p.parts >= MaxParts {
			return nil
		}
		p.parts++
		ct, ok := msgheader.Get(part, "Content-Type")
		if !ok {
			ct = "text/plain" // RFC 2046 §5.1: the default in a multipart
		}
		cte, _ := msgheader.Get(part, "Content-Transfer-Encoding")
		// A broken nested multipart is skipped: the report may be in a
		// later part.
		_ = p.entity(ct, cte, part[msgheader.BodyStart(part):], depth)
	}
	// Without the close delimiter (RFC 2046 §5.1.1 makes it mandatory;
	// reporters forget it) the last part ran to the end.
	return nil
}

// splitParts returns the body parts of a multipart body: the text between
// its delimiter lines ("--" boundary, RFC 2046 §5.1.1), without the line
// break that belongs to the next delimiter. Without the close delimiter
// ("--" boundary "--") the last part runs to the end.
func splitParts(body []byte, boundary string) (parts [][]byte) {
	delim := []byte("--" + boundary)
	start := -1 // start of the current part; -1 in the preamble
	for pos := 0; pos < len(body); {
		end := bytes.IndexByte(body[pos:], '\n')
		next := len(body)
		if end >= 0 {
			end += pos
			next = end + 1
		} else {
			end = len(body)
		}
		line := bytes.TrimRight(body[pos:end], " \t\r")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				if start >= 0 && len(parts) < MaxParts {
					partEnd := pos
					if partEnd > start && body[partEnd-1] == '\n' {
						partEnd--
						if partEnd > start && body[partEnd-1] == '\r' {
							partEnd--
						}
					}
					parts = append(parts, body[start:partEnd])
				}
				if len(rest) == 2 {
					return parts
				}
				start = next
			}
		}
		pos = next
	}
	if start >= 0 && start < len(body) && len(parts) < MaxParts {
		parts = append(parts, body[start:])
	}
	return parts
}

// decode undoes a Content-Transfer-Encoding (RFC 2045 §6); content that
// does not decode is taken as it is.
func decode(cte string, b []byte) []byte {
	d, err := decodeCTE(cte, b)
	if err != nil {
		return b
	}
	return d
}

func decodeCTE(cte string, b []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := make([]byte, 0, len(b))
		for _, c := range b {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				clean = append(clean, c)
			}
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			// Lenient: unpadded base64 is common enough.
			raw := bytes.TrimRight(clean, "=")
			out = make([]byte, base64.RawStdEncoding.DecodedLen(len(raw)))
			n, err = base64.RawStdEncoding.Decode(out, raw)
		}
		return out[:n], err
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
	}
	return b, nil
}

// groups calls f for each field of each group of header-style fields in
// b, groups separated by blank lines (the layout of message/delivery-status,
// RFC 3464 §2.1, and of message/feedback-report, RFC 5965 §3). f gets the
// group's index among the non-empty groups; it returns false to stop.
func groups(b []byte, f func(group int, name, value string) bool) {
	group := 0
	for len(b) > 0 {
		s := msgheader.NewScanner(b)
		n := 0
		for s.Next() {
			fd := s.Field()
			if fd.Name == nil {
				continue
			}
			n++
			v := fd.Unfolded()
			if len(v) > maxFieldLen {
				v = v[:maxFieldLen]
			}
			if !f(group, strings.ToLower(string(fd.Name)), v) {
				return
			}
		}
		if n > 0 {
			group++
		}
		next := s.BodyStart()
		if next == 0 {
			return
		}
		b = b[next:]
	}
}

// deliveryStatus reads the fields of a message/delivery-status part
// (RFC 3464 §2.2 per-message, §2.3 per-recipient). A group that has a
// per-recipient field starts a recipient; per-message fields are taken
// wherever they are, since some reporters write one group only.
func (p *parser) deliveryStatus(b []byte) {
	r := &p.r
	var cur *Recipient
	lastGroup := -1
	groups(b, func(g int, name, v string) bool {
		switch name {
		case "reporting-mta":
			r.ReportingMTA = typed(v)
			return true
		case "original-envelope-id":
			r.OriginalEnvelopeID = v
			return true
		case "arrival-date":
			r.ArrivalDate = v
			return true
		case "dsn-gateway", "received-from-mta", "x-postfix-queue-id", "x-postfix-sender":
			return true
		}
		if !perRecipient[name] {
			return true
		}
		if cur == nil || g != lastGroup {
			if len(r.Recipients) >= MaxRecipients {
				return false
			}
			r.Recipients = append(r.Recipients, Recipient{})
			cur, lastGroup = &r.Recipients[len(r.Recipients)-1], g
		}
		switch name {
		case "final-recipient":
			cur.FinalRecipient = address(typed(v))
		case "original-recipient":
			cur.OriginalRecipient = address(typed(v))
		case "action":
			cur.Action = strings.ToLower(firstWord(v))
		case "status":
			cur.Status = firstWord(v)
		case "remote-mta":
			cur.RemoteMTA = typed(v)
		case "diagnostic-code":
			cur.DiagnosticType, cur.Diagnostic = splitTyped(v)
			cur.Code = replyCode(cur.DiagnosticType, cur.Diagnostic)
		}
		return true
	})
	// A group without Final-Recipient names nobody (RFC 3464 §2.3.2 makes
	// it mandatory): its Original-Recipient stands in, else it is dropped.
	kept := r.Recipients[:0]
	for _, rc := range r.Recipients {
		if rc.FinalRecipient == "" {
			rc.FinalRecipient = rc.OriginalRecipient
		}
		if rc.FinalRecipient != "" || rc.Status != "" {
			kept = append(kept, rc)
		}
	}
	r.Recipients = kept
}

// perRecipient are the per-recipient fields of RFC 3464 §2.3 (and the
// ones for a recipient that RFC 3464 §2.3.7–2.3.9 add).
var perRecipient = map[string]bool{
	"original-recipient": true, "final-recipient": true, "action": true, "status": true,
	"remote-mta": true, "diagnostic-code": true, "last-attempt-date": true,
	"final-log-id": true, "will-retry-until": true,
}

// feedbackReport reads the fields of a message/feedback-report part
// (RFC 5965 §3.1 required, §3.2 optional).
func (p *parser) feedbackReport(b []byte) {
	r := &p.r
	groups(b, func(_ int, name, v string) bool {
		switch name {
		case "feedback-type":
			r.FeedbackType = strings.ToLower(v)
		case "user-agent":
			r.UserAgent = v
		case "version":
			r.Version = v
		case "original-envelope-id":
			r.OriginalEnvelopeID = v
		case "original-mail-from":
			r.OriginalMailFrom = address(v)
		case "arrival-date", "received-date": // Received-Date: the draft's name, still sent
			if r.ArrivalDate == "" {
				r.ArrivalDate = v
			}
		case "reporting-mta":
			r.ReportingMTA = typed(v)
		case "source-ip":
			r.SourceIP = v
		case "incidents":
			r.Incidents = v
		case "original-rcpt-to":
			if len(r.OriginalRcptTo) < MaxRecipients {
				r.OriginalRcptTo = append(r.OriginalRcptTo, address(v))
			}
		case "reported-domain":
			if len(r.ReportedDomain) < MaxRecipients {
				r.ReportedDomain = append(r.ReportedDomain, v)
			}
		}
		return true
	})
}

// typed drops the type of a typed field value, "dns; mx.example" →
// "mx.example" (RFC 3464 §2.2.2, §2.3.2: type ";" value).
func typed(v string) string {
	_, val := splitTyped(v)
	return val
}

// splitTyped splits "type; value" into its type (lower case) and value; a
// value without a ";" has no type.
func splitTyped(v string) (typ, val string) {
	t, rest, ok := strings.Cut(v, ";")
	if !ok {
		return "", strings.TrimSpace(v)
	}
	return strings.ToLower(strings.TrimSpace(t)), strings.TrimSpace(rest)
}

// address strips angle brackets and surrounding space from an address.
func address(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return strings.TrimSpace(v[i+1 : i+j])
		}
	}
	return v
}

// firstWord returns v up to its first space, tab or "(": "5.1.1 (no such
// user)" → "5.1.1".
func firstWord(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t("); i >= 0 {
		v = v[:i]
	}
	return v
}

// replyCode returns the SMTP reply code that starts a diagnostic of type
// smtp (RFC 3464 §2.3.6, "smtp; 550 5.1.1 …"), else 0.
func replyCode(typ, diag string) int {
	if typ != "smtp" || len(diag) < 3 {
		return 0
	}
	c := 0
	for i := 0; i < 3; i++ {
		d := diag[i]
		if d < '0' || d > '9' {
			return 0
		}
		c = c*10 + int(d-'0')
	}
	if c < 200 || c > 599 || (len(diag) > 3 && diag[3] != ' ' && diag[3] != '-') {
		return 0
	}
	return c
}

// findRef returns the value of the first line of msg that starts with
// "X-Gannet-Ref:" (any case), "" when there is none.
func findRef(msg []byte) string {
	const name = RefHeader + ":"
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		if len(line) > len(name) && strings.EqualFold(string(line[:len(name)]), name) {
			return strings.TrimSpace(string(line[len(name):]))
		}
	}
	return ""
}
