package outbound

import (
	"net/netip"
	"time"

	"gannet/smtpwire"
)

// Envelope is one transaction to deliver: a sender, the recipients of one
// destination domain and the message body (CRLF lines, not dot-stuffed).
type Envelope struct {
	From  string   // reverse path without brackets; "" is the null sender
	Rcpts []string // forward paths without brackets
	Body  []byte
	// Source is the egress source to send from (zero: Options.LocalAddr
	// and Options.EHLOName). Connections are pooled per source and site.
	Source Source
	// RequireTLS: the message came with MAIL … REQUIRETLS (RFC 8689): it
	// goes only over validated TLS to servers that offer REQUIRETLS
	// (requiretls.go).
	RequireTLS bool
	// Ret, EnvID and RcptDSN are the DSN parameters (RFC 3461) passed on
	// to a server that offers DSN (§6.2.1): RET and ENVID of MAIL, and
	// NOTIFY and ORCPT of each RCPT (RcptDSN parallel to Rcpts; nil when
	// no recipient has any).
	Ret     smtpwire.DSNRet
	EnvID   string
	RcptDSN []RcptDSN
	// Tenant is the message's tenant: Options.RelayAuth may choose its
	// smarthost login by it.
	Tenant string
}

// RcptDSN is the DSN request of one recipient (RFC 3461 §4.1, §4.2).
type RcptDSN struct {
	Notify smtpwire.DSNNotify
	ORcpt  string // "addr-type;address", decoded; "" when none
}

// Source is an egress source: the local address connections are made
// from and the name said in EHLO ([[egress_source]]).
type Source struct {
	Name     string     // pool key and log field; "" for the default source
	Addr     netip.Addr // zero: Options.LocalAddr
	EHLOName string     // "": Options.EHLOName
}

// Status is what happened to one recipient.
type Status uint8

const (
	// Transient: not delivered this time; retry later (4xx or a local or
	// connection failure).
	Transient Status = iota
	// Delivered: the server took responsibility (2xx to the final ".").
	Delivered
	// Bounced: the server refused permanently (5xx) or the message cannot
	// be sent to it (for example SMTPUTF8 needed but not offered).
	Bounced
)

func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case Bounced:
		return "bounced"
	}
	return "transient"
}

// Result is the outcome for one recipient.
type Result struct {
	Rcpt   string
	Status Status
	// Reply is the server's reply that decided the outcome (RCPT refusal,
	// DATA or final "." reply), or a locally made one for connection
	// failures (451 4.4.1 no answer, 451 4.4.2 connection lost) and policy
	// refusals (451 4.7.10 TLS required, 550 5.6.7 SMTPUTF8 not offered).
	Reply smtpwire.Reply
	// Local is true when Gannet made Reply itself (no server said it), so
	// that shaping does not mistake a lost connection for throttling.
	Local bool
}

// Outcome is the result of one Deliver call: one Result per recipient in
// the order given, and where and how the transaction went.
type Outcome struct {
	Results []Result
	// Host is the MX host name and Peer the address the transaction ran
	// on; both are zero when no connection could be made.
	Host string
	Peer netip.AddrPort
	// TLSVersion ("TLSv1.3") and TLSCipher (IANA suite name) are empty when
	// the session was in the clear.
	TLSVersion string
	TLSCipher  string
	// Note says what went unusual: a STARTTLS that failed and was followed
	// by delivery in the clear, hosts that could not be reached before this
	// one, or why no host could be used.
	Note string
	// SessionReply is the server's reply that refused the session before
	// any transaction (a 421 greeting, a refused EHLO) when no host gave
	// one; zero otherwise. Shaping reads it as a throttling signal.
	SessionReply smtpwire.Reply
	// ConnRefused: no session could be had because the last address tried
	// refused the TCP connection itself (ECONNREFUSED). With SessionReply,
	// what connection-count tuning reads as the site refusing more
	// connections.
	ConnRefused bool
	// Elapsed is how long the transaction took on its session, from the
	// first command written to the last reply read (zero when no session
	// was had): the reply latency connection-count tuning watches.
	Elapsed time.Duration
	// PoolOpen is the number of connections the pool held open to the
	// site (dialling, in use or idle) when the transaction ended: whether
	// the connection limit was reached.
	PoolOpen int
	// Source is the egress source the transaction went out from.
	Source string
	// TLSPolicy names the TLS policy the delivery ran under
	// (TLSPolicySTSEnforce, …), the log records' tls_policy.
	TLSPolicy string
	// DSN: the server the transaction ran on offered DSN (RFC 3461), so
	// it was given the DSN parameters and owes the sender any DSN from
	// here on (§6.2.1); without it the relay owes a "relayed" one
	// (§6.2.2).
	DSN bool
	// TLSResultType says, when a TLS failure decided a failed delivery (an
	// MX host refused by MTA-STS, a DANE failure, a REQUIRETLS refusal, a
	// failed STARTTLS that was not followed by delivery in the clear), what
	// failed: an RFC 8460 result type (tlsrpt.ResultCertExpired,
	// ResultTLSAInvalid, …) or ResultRequireTLSNotOffered or
	// ResultRequireTLSNotValidated; the log records' tls_result_type. ""
	// otherwise, and whenever the message was delivered.
	TLSResultType string
}

// Counts returns how many recipients were delivered, bounced and deferred.
func (o *Outcome) Counts() (delivered, bounced, transient int) {
	for i := range o.Results {
		switch o.Results[i].Status {
		case Delivered:
			delivered++
		case Bounced:
			bounced++
		default:
			transient++
		}
	}
	return
}

// Limits shape the traffic to one site (from [shaping]).
type Limits struct {
	Connections          int     // simultaneous connections; <= 0 means 1
	MaxDeliveriesPerConn int     // transactions per connection; <= 0 unlimited
	MessageRate          float64 // transactions per second; 0 = unlimited
	ConnectionRate       float64 // new connections per second; 0 = unlimited
}

// statusOf maps a reply to a recipient status: 2xx delivered, 5xx bounced,
// anything else transient ("temporary unless known permanent").
func statusOf(r smtpwire.Reply) Status {
	switch {
	case r.Code >= 200 && r.Code < 300:
		return Delivered
	case r.Code >= 500 && r.Code < 600:
		return Bounced
	}
	return Transient
}

// localReply builds a reply made by Gannet itself for a failure that no
// server reply describes.
func localReply(code int, enhanced, text string) smtpwire.Reply {
	return smtpwire.Reply{Code: code, Enhanced: enhanced, Lines: []string{text}}
}
