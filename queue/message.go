package queue

import (
	"strconv"
	"time"
)

// RcptState is where one recipient of a message stands.
type RcptState uint8

const (
	// Pending recipients still wait for a (first or next) delivery attempt.
	Pending RcptState = iota
	// Delivered recipients got a 2xx reply to the end of DATA.
	Delivered
	// Bounced recipients got a permanent (5xx) failure, or were bounced by
	// an administrator.
	Bounced
	// Expired recipients were still pending when the message grew older
	// than the retry policy's MaxAge.
	Expired
)

func (s RcptState) String() string {
	switch s {
	case Pending:
		return "pending"
	case Delivered:
		return "delivered"
	case Bounced:
		return "bounced"
	case Expired:
		return "expired"
	}
	return "RcptState(" + strconv.Itoa(int(s)) + ")"
}

// Recipient is one forward-path of a message and its delivery state.
type Recipient struct {
	Addr      string
	State     RcptState
	Attempts  int    // delivery attempts made for this recipient
	LastReply string // last reply from the MX ("451 4.7.1 try later"), for logs and inspection
	// Notify is the recipient's DSN request (RFC 3461 §4.1): Notify…
	// bits, the same as smtpwire.DSNNotify; 0 when none was given.
	Notify uint8
	// ORcpt is the original recipient (RFC 3461 §4.2) as
	// "addr-type;address", decoded; "" when none was given.
	ORcpt string
	// DelayWarned: a delay DSN was sent for this recipient (at most one).
	DelayWarned bool
}

// DSN request bits of Recipient.Notify (RFC 3461 §4.1), the values of
// smtpwire.DSNNotify.
const (
	NotifyNever   uint8 = 1
	NotifySuccess uint8 = 2
	NotifyFailure uint8 = 4
	NotifyDelay   uint8 = 8
)

// Values of Message.DSNRet (RFC 3461 §4.3), those of smtpwire.DSNRet.
const (
	RetFull    uint8 = 1
	RetHeaders uint8 = 2
)

// Message is the metadata the index keeps for one spooled message. The body
// lives in a segment file; Segment, Offset and Length say where.
type Message struct {
	ID         string // set by the caller before Append; [0-9a-z] from IDGenerator
	From       string // reverse-path; "" for the null sender (bounces)
	Recipients []Recipient
	Tenant     string
	Campaign   string
	Priority   int // 0 bulk, 1 high (transactional)
	Created    time.Time
	NextDue    time.Time // when the next attempt is due; zero: now
	Attempts   int       // delivery attempts of the message as a whole
	Size       int       // body bytes before compression; set by Append
	Segment    uint64    // set by the spool
	Offset     int64     // set by the spool
	Length     int64     // encoded record bytes; set by the spool
	// RequireTLS: the message came with MAIL … REQUIRETLS (RFC 8689 §4.1)
	// and may be relayed only over validated TLS to servers that offer
	// REQUIRETLS.
	RequireTLS bool
	DSNRet     uint8  // RET= of the submission (RetFull, RetHeaders); 0: not given
	EnvID      string // ENVID= of the submission (RFC 3461 §4.4), decoded; "" when none
	// Xferred: another node handed the message over (gannet xfer,
	// engine/handover); its content keeps the verified X-Gannet-Xfer
	// field, which delivery takes out.
	Xferred bool
}

// HasDSN reports whether m carries any DSN parameter (RFC 3461), that is,
// whether its encodings need their DSN section.
func (m *Message) HasDSN() bool {
	if m.DSNRet != 0 || m.EnvID != "" {
		return true
	}
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.Notify != 0 || r.ORcpt != "" || r.DelayWarned {
			return true
		}
	}
	return false
}

// Message flags: the bits of the flags field of the index value and of
// Packed (bit 0: RequireTLS, bit 1: Xferred). A value with an unknown bit
// is corrupt.
const (
	flagRequireTLS = 1 << 0
	flagXferred    = 1 << 1
	knownFlags     = flagRequireTLS | flagXferred
)

func (m *Message) flags() uint64 {
	var f uint64
	if m.RequireTLS {
		f |= flagRequireTLS
	}
	if m.Xferred {
		f |= flagXferred
	}
	return f
}

func (m *Message) setFlags(f uint64) {
	m.RequireTLS, m.Xferred = f&flagRequireTLS != 0, f&flagXferred != 0
}

// Done reports whether no recipient is pending any more, that is, whether
// the message can be removed from the spool.
func (m *Message) Done() bool {
	for i := range m.Recipients {
		if m.Recipients[i].State == Pending {
			return false
		}
	}
	return true
}

// Pending returns the number of recipients still pending.
func (m *Message) Pending() int {
	n := 0
	for i := range m.Recipients {
		if m.Recipients[i].State == Pending {
			n++
		}
	}
	return n
}
