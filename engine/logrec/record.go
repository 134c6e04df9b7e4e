package logrec

import (
	"crypto/tls"
	"strconv"
	"time"
	"unicode/utf8"
)

// Type is the kind of event a Record describes; the names are KumoMTA's.
type Type string

// The record types.
const (
	Reception        Type = "Reception"        // a message was accepted and is durable
	Delivery         Type = "Delivery"         // a recipient's MX host accepted it (2xx)
	TransientFailure Type = "TransientFailure" // an attempt failed temporarily (4xx, network, DNS); it will be retried
	Bounce           Type = "Bounce"           // a recipient failed permanently (5xx)
	Expiration       Type = "Expiration"       // the message stayed undelivered past max_retry_age
	AdminBounce      Type = "AdminBounce"      // an operator bounced it through the admin API
	AdminDelete      Type = "AdminDelete"      // an operator deleted it through the admin API (no bounce)
	DeadLetter       Type = "DeadLetter"       // it can no longer be delivered and was kept as a dead letter
	// Suppressed: a recipient on the suppression list was refused at
	// injection ([suppression] mode "refuse": the Response is the 550
	// 5.7.1 the client got) or taken and skipped ("drop"; also in mode
	// "refuse" when the tenant that lists it was known only from the
	// message). Response.Content holds the entry's reason.
	Suppressed Type = "Suppressed"
	// AdminErase: an operator asked for an address to be erased (gannet
	// erase). Recipient holds "sha256:" and the hex SHA-256 of the folded
	// address, never the address; Response.Content says what was done.
	AdminErase Type = "AdminErase"
	// XferOut: an xfer rule (gannet xfer) handed the recipient to another
	// node, which answered 2xx; Site is that node's "host:port". Final
	// here, and not a delivery.
	XferOut Type = "XferOut"
	// Rejection: Gannet answered an SMTP client with a 4xx or 5xx (at
	// connect, EHLO, AUTH, MAIL, RCPT, DATA/BDAT, …); Command says to what.
	Rejection Type = "Rejection"
	// OOB: an asynchronous bounce came back (a DSN, RFC 3464, received on a
	// feedback address): one record per recipient it reports on.
	OOB Type = "OOB"
	// Feedback: a feedback report (ARF, RFC 5965) came back: a complaint
	// or another report about a message Gannet sent.
	Feedback Type = "Feedback"
	// BackoffStart and BackoffEnd: a destination site entered or left
	// backoff mode; Site names it, Reason says why (the reply a shaping
	// rule matched, the deferral rate; "after 1h", "after 100
	// deliveries"), the other message fields are empty.
	BackoffStart Type = "BackoffStart"
	BackoffEnd   Type = "BackoffEnd"
)

// Response is the SMTP reply a record is about: the reply to the final "."
// for Reception and Delivery, the failing reply otherwise.
type Response struct {
	Code         int    // 250
	EnhancedCode string // "2.0.0" (RFC 3463); "" when none
	Content      string // text of the reply, lines joined by "\n"
}

// PeerAddress is the other end: the client for Reception, the MX host for
// deliveries. Name may be empty; an empty Addr is written as null.
type PeerAddress struct {
	Name string // host name (MX name or EHLO name)
	Addr string // IP address, without port
}

// Record is one log record, one JSON object per line. The JSON field names are
// KumoMTA's; see AppendJSON for the exact layout.
type Record struct {
	Type                 Type
	ID                   string // message id
	Sender               string // envelope sender ("" for the null reverse path)
	Recipient            string // one envelope recipient per record
	Queue                string // scheduled queue name: "campaign:tenant@domain" (KumoMTA's form)
	Site                 string // ready-queue (MX site) name; "" before routing
	Size                 int64  // message size in bytes
	NumAttempts          int    // delivery attempts made so far
	Response             Response
	BounceClassification string // e.g. "Uncategorized", "InvalidRecipient"
	PeerAddress          PeerAddress
	TLSProtocolVersion   string // "TLSv1.3"; "" when the connection was plain
	TLSCipher            string // "TLS_AES_128_GCM_SHA256"
	// TLSPolicy is the outbound TLS policy a delivery attempt ran under:
	// "sts-enforce", "sts-testing" (MTA-STS, RFC 8461), "opportunistic",
	// "required" or "none" ([tls] mode disabled); "" for other records.
	TLSPolicy string
	// TLSResultType is, on a failed delivery attempt that a TLS failure
	// decided (an MTA-STS or DANE refusal, a REQUIRETLS refusal, a failed
	// STARTTLS under mode required), what failed: an RFC 8460 result type
	// ("certificate-host-mismatch", "tlsa-invalid", …) or one of
	// REQUIRETLS ("requiretls-not-offered", "requiretls-not-validated");
	// "" otherwise.
	TLSResultType string
	Tenant        string
	Campaign      string
	Timestamp     time.Time // when the event happened
	Created       time.Time // when the message was received
	EgressSource  string    // optional: outbound source address or name
	Listener      string    // optional: [[smtp_listener]] name or "http" for Reception
	// XferFrom is, on the Reception of mail another node handed over
	// (gannet xfer, verified), the message's id on that node.
	XferFrom string
	// Command is the SMTP verb a Rejection answers ("MAIL", "RCPT",
	// "connect", …): never its arguments, so no AUTH secret is logged.
	Command string
	// Reason says why a BackoffStart or BackoffEnd record was written.
	Reason string
	// UUID names this one record (RFC 9562 form, random): the engine
	// stamps every record with one, and event sinks (engine/events) send
	// it as the record's idempotency key, so that a receiver can drop a
	// record it was sent twice.
	UUID string

	// Report is set on OOB and Feedback records: what the report says
	// and whether it was matched to a message Gannet sent.
	Report *Report
}

// Report is what an OOB or Feedback record adds: ID, Tenant and Campaign of
// the record name the original message when Matched, Recipient the
// reported recipient, Response the status and diagnostic (OOB).
type Report struct {
	// Matched: the report carried a reference (X-Gannet-Ref quoted back,
	// or the VERP return path it was sent to) that verified under
	// [feedback] secret. MatchedBy says which: "verp" or "header".
	Matched   bool
	MatchedBy string
	// Unmatched says why not ("no reference", "forged reference", …).
	Unmatched    string
	ReportingMTA string // Reporting-MTA (RFC 3464 §2.2.2, RFC 5965 §3.2)
	RemoteMTA    string // Remote-MTA (RFC 3464 §2.3.5)
	Action       string // Action (RFC 3464 §2.3.3): "failed", "delayed", …
	FeedbackType string // Feedback-Type (RFC 5965 §3.1): "abuse", …
	UserAgent    string // User-Agent (RFC 5965 §3.1)
	SourceIP     string // Source-IP (RFC 5965 §3.2)
	// Suppressed: the recipient was handed to the suppression list (a
	// permanent OOB bounce of a hard class, or a complaint).
	Suppressed bool
}

// AppendJSON appends r as one JSON object and a newline. The layout is:
//
//	{"type":"Delivery","id":"…","sender":"…","recipient":"…","queue":"…",
//	 "site":"…","size":1234,"num_attempts":1,
//	 "response":{"code":250,"enhanced_code":{"class":2,"subject":0,"detail":0},"content":"OK"},
//	 "bounce_classification":"","peer_address":{"name":"mx.example.test","addr":"192.0.2.1"},
//	 "tls_protocol_version":"TLSv1.3","tls_cipher":"…","tenant":"…","campaign":"…",
//	 "timestamp":1700000000,"created":1699999990,"egress_source":"…","listener":"…",
//	 "tls_policy":"sts-enforce","tls_result_type":"certificate-expired",
//	 "uuid":"0b6f6c1e-…"}
//
// Every field is always present except egress_source, listener,
// tls_policy, tls_result_type, command (Rejection records: ,"command":"RCPT")
// and reason (BackoffStart and BackoffEnd records), which are left out when
// empty, then the fields of Report (OOB and Feedback records only: see
// Report.appendJSON), and uuid last. As in KumoMTA, enhanced_code is an object of three
// numbers (null when there is none or it does not parse), peer_address is null
// when there is no address, and timestamp and created are Unix seconds
// (integers; 0 when unset). Strings are escaped per RFC 8259; invalid UTF-8
// becomes U+FFFD. It is written by hand, without reflection, because it runs
// for every recipient of every attempt.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, string(r.Type))
	b = append(b, `,"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"sender":`...)
	b = appendString(b, r.Sender)
	b = append(b, `,"recipient":`...)
	b = appendString(b, r.Recipient)
	b = append(b, `,"queue":`...)
	b = appendString(b, r.Queue)
	b = append(b, `,"site":`...)
	b = appendString(b, r.Site)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, r.Size, 10)
	b = append(b, `,"num_attempts":`...)
	b = strconv.AppendInt(b, int64(r.NumAttempts), 10)
	b = append(b, `,"response":{"code":`...)
	b = strconv.AppendInt(b, int64(r.Response.Code), 10)
	b = append(b, `,"enhanced_code":`...)
	b = appendEnhanced(b, r.Response.EnhancedCode)
	b = append(b, `,"content":`...)
	b = appendString(b, r.Response.Content)
	b = append(b, `},"bounce_classification":`...)
	b = appendString(b, r.BounceClassification)
	b = append(b, `,"peer_address":`...)
	if r.PeerAddress.Addr == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"name":`...)
		b = appendString(b, r.PeerAddress.Name)
		b = append(b, `,"addr":`...)
		b = appendString(b, r.PeerAddress.Addr)
		b = append(b, '}')
	}
	b = append(b, `,"tls_protocol_version":`...)
	b = appendString(b, r.TLSProtocolVersion)
	b = append(b, `,"tls_cipher":`...)
	b = appendString(b, r.TLSCipher)
	b = append(b, `,"tenant":`...)
	b = appendString(b, r.Tenant)
	b = append(b, `,"campaign":`...)
	b = appendString(b, r.Campaign)
	b = append(b, `,"timestamp":`...)
	b = appendUnix(b, r.Timestamp)
	b = append(b, `,"created":`...)
	b = appendUnix(b, r.Created)
	if r.EgressSource != "" {
		b = append(b, `,"egress_source":`...)
		b = appendString(b, r.EgressSource)
	}
	if r.Listener != "" {
		b = append(b, `,"listener":`...)
		b = appendString(b, r.Listener)
	}
	if r.XferFrom != "" {
		b = append(b, `,"xfer_from":`...)
		b = appendString(b, r.XferFrom)
	}
	if r.TLSPolicy != "" {
		b = append(b, `,"tls_policy":`...)
		b = appendString(b, r.TLSPolicy)
	}
	if r.TLSResultType != "" {
		b = append(b, `,"tls_result_type":`...)
		b = appendString(b, r.TLSResultType)
	}
	if r.Command != "" {
		b = append(b, `,"command":`...)
		b = appendString(b, r.Command)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Reason)
	}
	if rp := r.Report; rp != nil {
		b = rp.appendJSON(b)
	}
	if r.UUID != "" {
		b = append(b, `,"uuid":`...)
		b = appendString(b, r.UUID)
	}
	return append(b, "}\n"...)
}

// appendJSON writes the fields of an OOB or Feedback record:
// ,"matched":true,"matched_by":"header","reporting_mta":"…",… — matched
// always, suppressed when true, the others when not empty.
func (rp *Report) appendJSON(b []byte) []byte {
	b = append(b, `,"matched":`...)
	b = strconv.AppendBool(b, rp.Matched)
	for _, f := range [...]struct{ name, v string }{
		{"matched_by", rp.MatchedBy}, {"unmatched_reason", rp.Unmatched},
		{"reporting_mta", rp.ReportingMTA}, {"remote_mta", rp.RemoteMTA}, {"action", rp.Action},
		{"feedback_type", rp.FeedbackType}, {"user_agent", rp.UserAgent}, {"source_ip", rp.SourceIP},
	} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = appendString(b, f.v)
		}
	}
	if rp.Suppressed {
		b = append(b, `,"suppressed":true`...)
	}
	return b
}

func appendUnix(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, '0')
	}
	return strconv.AppendInt(b, t.Unix(), 10)
}

// appendEnhanced writes "4.7.1" as {"class":4,"subject":7,"detail":1}, the
// form KumoMTA logs; anything that is not three numbers is null.
func appendEnhanced(b []byte, s string) []byte {
	var part [3]int
	n, digits := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9' && digits < 3:
			part[n] = part[n]*10 + int(c-'0')
			digits++
		case c == '.' && digits > 0 && n < 2:
			n++
			digits = 0
		default:
			return append(b, "null"...)
		}
	}
	if n != 2 || digits == 0 {
		return append(b, "null"...)
	}
	b = append(b, `{"class":`...)
	b = strconv.AppendInt(b, int64(part[0]), 10)
	b = append(b, `,"subject":`...)
	b = strconv.AppendInt(b, int64(part[1]), 10)
	b = append(b, `,"detail":`...)
	b = strconv.AppendInt(b, int64(part[2]), 10)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (RFC 8259 section 7).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// TLSVersion names a TLS version the way the records (and KumoMTA and
// Postfix logs) do: "TLSv1.3"; versions without such a name get
// crypto/tls's name.
func TLSVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1.0"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}
