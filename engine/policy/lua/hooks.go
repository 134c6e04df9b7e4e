package lua

// The run-time side of a policy script: the types that cross between the
// engine and the script's event hooks (docs/policy.md, "Events"). The
// engine calls the methods of *Hooks (run.go: the pool of Lua states and
// the events; runtime.go: the functions the handlers call); the script acts
// on the relay through Host, which the engine implements.

import (
	"log/slog"
	"time"

	"gannet/engine/dkim"
	"gannet/engine/policy"
	"gannet/smtpwire"
)

// The event names a script registers with kumo.on. KumoMTA's own names are
// accepted as aliases (see eventAliases).
const (
	EventGreeting        = "smtp_server_greeting"
	EventMessage         = "smtp_message_received"
	EventDeliveryResult  = "smtp_delivery_result"
	EventHTTPRequest     = "http_request"
	EventAuth            = "smtp_server_auth"
	EventQueueConfig     = "get_queue_config"
	EventEgressPath      = "get_egress_path_config"
	DefaultHookTimeout   = 100 * time.Millisecond
	defaultMaxIdleStates = 64
)

// Host is what a running script may do to the relay beyond the message
// or request in hand: the kumo.* and global functions that change the
// relay's state. It is declared here, by its consumer; the engine
// implements it. Every method may be called from many goroutines at once
// and must not block for long.
type Host interface {
	// LimitSending sets the tenant's message rate for the running process
	// (kumo.limit_sending(tenant, n, {per = "minute"}) → n/60 per second),
	// as [[tenant]] max_message_rate would.
	LimitSending(tenant string, perSecond float64)
	// AdjustDomainRate multiplies the current rate of the domain's site by
	// 1+delta, within the configured bounds (adjust_domain_rate(d, -0.3)).
	AdjustDomainRate(domain string, delta float64)
	// Suspend and Bounce are the admin API's suspend and bounce
	// (kumo.suspend{domain, tenant, campaign, site, reason, duration},
	// kumo.bounce{…}); d 0 means the default duration.
	Suspend(sel Selector, reason string, d time.Duration)
	Bounce(sel Selector, reason string, d time.Duration)
	// CampaignEvent counts increment_campaign_metric(campaign, event).
	CampaignEvent(campaign, event string)
}

// Selector names queued mail for Host.Suspend and Host.Bounce; empty
// fields match everything.
type Selector struct {
	Domain, Tenant, Campaign, Site string
}

// Options configure the run-time side of a script (Script.Start).
type Options struct {
	Host Host
	// Log receives log_info/log_warn/log_error and the hooks' errors (with
	// the script's file:line).
	Log *slog.Logger
	// Timeout is each hook call's time budget ([policy] hook_timeout);
	// 0: DefaultHookTimeout.
	Timeout time.Duration
	// Errors counts a hook that failed or ran past its budget
	// (gannet_policy_errors_total{event}); may be nil.
	Errors func(event string)
	// Base is the policy the configuration file states (policy.Rules): the
	// message hook starts from its decision. Nil: an empty decision.
	Base interface {
		Decide(m policy.Message) (policy.Decision, error)
	}
}

// GreetingMeta is what smtp_server_greeting gets as (domain, meta).
type GreetingMeta struct {
	Domain   string // the EHLO/HELO name
	Tenant   string // the session's tenant (AUTH account or listener), "" for none
	AuthUser string
	Peer     string // the client's IP address
	Listener string
}

// Greeting is what the greeting hooks decided for the session.
type Greeting struct {
	// DKIM are the keys kumo.sign_dkim named: each message of the session
	// is signed with them too.
	DKIM []dkim.KeyConfig
	// Reject is kumo.reject(code, text): the session's mail transactions
	// are refused with it. Nil: none.
	Reject *smtpwire.Reply
}

// DeliveryResult is smtp_delivery_result's result.
type DeliveryResult struct {
	Code     int
	Enhanced string // "4.7.0"
	Text     string
	// Kind is the log record type: "Delivery", "TransientFailure",
	// "Bounce", "Expiration".
	Kind string
}

// DeliveryMeta is smtp_delivery_result's meta.
type DeliveryMeta struct {
	Domain, Site, Tenant, Campaign, ID, Recipient string
	Attempts                                      int
}

// HTTPRequest is http_request's request.
type HTTPRequest struct {
	Method, Path string
	// Headers has the first value of each field, by its canonical name
	// (net/http's); the script's lookups are case-insensitive.
	Headers map[string]string
	Remote  string // the client's IP address
}

// HTTPResponse is what http_request returned: the answer to the request.
type HTTPResponse struct {
	Status int
	Body   []byte
	// JSON says the body is JSON (the script returned a table as body).
	JSON bool
}

// AuthMeta is smtp_server_auth's meta.
type AuthMeta struct {
	Listener, Peer, Mechanism string
}

// AuthResult is what smtp_server_auth returned.
type AuthResult struct {
	// Handled is false when no hook answered (none registered, or every
	// one returned nil): the configured accounts decide.
	Handled bool
	OK      bool
	Tenant  string
}

// QueueConfig is get_queue_config's answer (kumo.make_queue_config): zero
// fields are unset (the configuration's value applies).
type QueueConfig struct {
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	MaxAge           time.Duration
	EgressPool       string
}

// EgressPath is get_egress_path_config's answer (kumo.make_egress_path):
// zero fields are unset.
type EgressPath struct {
	ConnectionLimit            int
	MaxMessageRate             float64 // per second
	MaxDeliveriesPerConnection int
	EnableTLS                  string // "Opportunistic", "Required", "Disabled", …; "" unset
	SMTPPort                   int
}
