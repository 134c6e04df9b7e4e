package delivery

import (
	"context"
	"log/slog"
	"time"

	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// Store is what delivery needs of the spool (*queue.Spool has it).
type Store interface {
	// Body returns the message body; delivery reads it once per
	// transaction and keeps no body of a waiting message in memory.
	Body(m *queue.Message) ([]byte, error)
	// Update persists recipient states, attempts and the next due time.
	Update(m *queue.Message) error
	// Remove drops a message whose every recipient is final.
	Remove(id string) error
	// Quarantine takes out a message whose Body reported queue.ErrCorrupt
	// (see queue.Spool.Quarantine): nil when it is out, an error wrapping
	// queue.ErrNotFound when it is not in the spool (any more), one
	// wrapping queue.ErrNotCorrupt when it reads back intact.
	Quarantine(id string) error
}

// bodyReleaser is a Store that takes back the body Body returned once the
// transaction that read it has ended, to reuse its buffer (the engine's
// store does); delivery keeps nothing of it past that point.
type bodyReleaser interface {
	ReleaseBody(body []byte)
}

// locatedRemover is a Store that removes a message without looking up
// where its record is, from the metadata it was spooled with
// (queue.Spool.RemoveLocated): settle uses it for the one removal that
// finishes a message.
type locatedRemover interface {
	RemoveLocated(m *queue.Message) error
}

// RuleSharer shares the admin rules with the other nodes of a cluster.
// Its calls return at once (they may be made with the rules' lock held):
// the sharing happens behind them.
type RuleSharer interface {
	// Put shares a rule made or changed here: value is its stored form,
	// expires when it ends by itself (zero: not by itself).
	Put(key string, value []byte, expires time.Time)
	// Delete shares the end of a rule.
	Delete(key string)
}

// RuleStore keeps the admin rules durably (*queue.Spool has it: its admin
// keyspace). Keys and values are the loop's (rulestore.go).
type RuleStore interface {
	// PutAdminState stores value under key, durably before it returns.
	PutAdminState(key string, value []byte) error
	// DeleteAdminState removes key; a missing key is no error.
	DeleteAdminState(key string) error
	// AdminStates calls fn with every key and value stored.
	AdminStates(fn func(key string, value []byte) error) error
}

// DeadLetterStore keeps the messages that can no longer be delivered
// (*queue.Spool has it: dead letters, queue/dead.go).
type DeadLetterStore interface {
	// MoveToDead takes a message whose recipients are all final out of the
	// queue into the dead letters, instead of Store.Remove.
	MoveToDead(m *queue.Message, at time.Time) error
}

// Router resolves a destination domain to its MX route (*resolver.Resolver
// has it). Errors that are a *smtpwire.Error carry the reply code to bounce
// or defer with.
type Router interface {
	Resolve(ctx context.Context, domain string) (*resolver.Route, error)
}

// Transport runs one SMTP transaction (*outbound.Manager has it).
type Transport interface {
	Deliver(ctx context.Context, route *resolver.Route, env *outbound.Envelope) outbound.Outcome
	Close() error
}

// Metrics receives counts and latencies; every method must be cheap and
// safe for concurrent use. Nil in Options: none.
type Metrics interface {
	// Delivered is called per delivered recipient with the time from
	// reception (Message.Created) to delivery.
	Delivered(latency time.Duration)
	Bounced()          // per bounced recipient
	TransientFailure() // per deferred recipient
	Expired()          // per expired recipient
}

// Options configure a Loop.
type Options struct {
	Store     Store     // required
	Transport Transport // required
	// Router resolves domains; not needed when RelayTo is set.
	Router Router
	// RelayTo ([delivery] relay_to, "host:port"): every domain routes to
	// this smarthost without a DNS lookup; the site is
	// resolver.RelaySite(RelayTo). The Transport must be configured with
	// the same value.
	RelayTo string
	// RelayFor, when set, names the smarthost ("host:port") for mail of a
	// tenant to a domain, or "" for RelayTo (or the MX hosts): a
	// [[tenant]] or [relay."DOMAIN"] relay_to. Asked when an item is
	// routed, so that a reload applies.
	RelayFor func(tenant, domain string) string
	// Retry is the retry schedule and the maximum age ([queue]
	// retry_interval, max_retry_interval, max_retry_age).
	Retry queue.RetryPolicy
	// RetryFor, when set, gives the retry schedule of one queue (a
	// policy script's get_queue_config): its non-zero fields replace those
	// of Retry for the mail of that tenant and campaign to that domain.
	RetryFor func(tenant, campaign, domain string) (queue.RetryPolicy, bool)
	// Limits returns the shaping of a path: Connections is the number of
	// workers (and so of simultaneous transactions) per path. Nil: 10.
	// Unused when Shaper is set.
	Limits func(p outbound.Path) outbound.Limits
	// Shaper, when set, gives the effective limits of each path, holds
	// items of suspended paths and learns from every outcome
	// (*shaping.Shaper has it).
	Shaper Shaper
	// SharedRate, when set, is the message rate a path shares with the
	// other nodes of a cluster (engine/cluster): an item goes only with
	// one of its tokens, besides the path's own limits. Nil: none.
	SharedRate SharedRate
	// SharedTenantRate, when set, is the tenants' message rates shared
	// with the other nodes of a cluster (sharedtenant.go): an item goes
	// only with a token of its tenant's, besides Options.TenantRate. Nil:
	// none.
	SharedTenantRate SharedTenantRate
	// Warmup is the IP warm-up of the egress sources (warmup.go); nil:
	// none.
	Warmup WarmupGate
	// Egress chooses the egress source of a tenant's mail ([[egress_pool]]
	// by weight); it is called once per work item, when it is first
	// routed. Nil: the default source.
	Egress func(tenant, campaign, domain string) outbound.Source
	// TenantRate returns a tenant's message rate per second ([[tenant]]
	// max_message_rate; 0 unlimited). An item over its tenant's rate waits
	// in the scheduled queue, never in a site worker. Nil: no tenant rates.
	TenantRate func(tenant string) float64
	// SendBounce, when set ([delivery] send_bounces), receives an RFC 3464
	// delivery status notification for the envelope sender of a message
	// with recipients that bounced or expired: the caller spools it as a
	// new message from the null sender. Never called for a message that
	// itself has the null sender (RFC 5321 §4.5.5).
	SendBounce func(to string, body []byte) error
	// ReportingMTA names this host in bounce messages (EHLO name).
	ReportingMTA string
	// ReturnPath, when set, gives the envelope sender (MAIL FROM) of a
	// transaction of message id (of tenant and campaign, sent by from) to
	// rcpts — a VERP address, so that bounces come back matched; nil: from.
	// It is not asked for the null sender.
	ReturnPath func(id, tenant, campaign, from string, rcpts []string) string
	// DeadLetters, when set ([queue] dead_letter_after > 0), keeps a
	// message that ends with an expired recipient (or, with KeepBounced, a
	// bounced one) as a dead letter, with a DeadLetter record per recipient
	// not delivered, instead of removing it from the spool. Admin bounces
	// and deletes never make dead letters. Nil: such messages are removed.
	DeadLetters DeadLetterStore
	// KeepBounced ([queue] keep_bounced): a permanent failure makes a dead
	// letter too, not only an expiry.
	KeepBounced bool
	// DeadLetterPolicy, when set, is asked at each message's end instead of
	// the two fields above (a reload changes [queue] dead_letter_after and
	// keep_bounced): keep false removes the message even with DeadLetters
	// set.
	DeadLetterPolicy func() (keep, keepBounced bool)
	// Record receives one log record per outcome (Delivery, Bounce,
	// TransientFailure, Expiration). Nil: none.
	Record Recorder
	// Classify names the bounce_classification of a Bounce record. Nil:
	// Classify (by enhanced status code).
	Classify func(smtpwire.Reply) string
	// Metrics receives counters and the delivery latency. Nil: none.
	Metrics Metrics
	// Attempted, when set, is told of every transaction once it ended and
	// the shaper saw it, before its outcome is applied (a policy script's
	// smtp_delivery_result hook). It runs on the delivery worker: it may
	// take a little time, never long.
	Attempted func(a *Attempt)
	// Rules keeps the admin rules (suspensions, bounces in force, holds)
	// across restarts (*queue.Spool has it): each is written when made and
	// deleted when it ends, and RestoreRules puts them back in force.
	// Nil: the rules live in memory only.
	Rules RuleStore
	// Shared, when set, is told of every rule stored and deleted, to share
	// it with the other nodes of a cluster (engine/cluster's Rules); the
	// rules it brings from them come in through ApplySharedRule and
	// DropSharedRule. Nil: the rules are this node's alone.
	Shared RuleSharer
	// Backoff, when set, is the sites' backoff mode (the Shaper's;
	// backoff.go): the deferred mail of a site in backoff is retried after
	// its backoff_retry_after, and its state is kept with the admin rules
	// (and shared with them). Nil: no backoff mode.
	Backoff SiteBackoff
	// Handover, when set, tells who this node is to the targets of xfer
	// rules and the secret the handovers are MACed with (handover.go);
	// read at each handover. Nil: handovers carry no field.
	Handover func() HandoverIdentity
	// Tuning, when set, takes back what the sites' self-tuning learned
	// before a restart (tune.go). Nil: what is stored is dropped.
	Tuning SiteTuning
	// Cuts, when set, puts in force the adaptive back-off other nodes of
	// a cluster share (cut.go). Nil: theirs are not applied here.
	Cuts PathCuts
	// Clock is the time source (queue.SystemClock()); tests use a
	// queuetest.FakeClock.
	Clock queue.Clock
	// ResolveConcurrency bounds the DNS lookups in flight (16).
	ResolveConcurrency int
	// Logger receives errors that have no record (spool update failures).
	// Nil: slog.Default().
	Logger *slog.Logger
	// SendDSN, when set, receives the delivery status notifications a
	// sender asked for with NOTIFY (RFC 3461 §4.1): "relayed" after
	// delivery to a server without DSN (§6.2.2), "failed" when NOTIFY has
	// FAILURE, "delayed" (DelayWarningAfter). It is used whatever
	// SendBounce is; nil: such DSNs go to SendBounce when it is set.
	SendDSN func(to string, body []byte) error
	// DelayWarningAfter ([queue] delay_warning_after, read at each
	// deferral: a reload changes it): a recipient whose NOTIFY has DELAY
	// and that is still deferred this long after the message arrived gets
	// one "delayed" DSN. Nil or 0: none.
	DelayWarningAfter func() time.Duration
}

// Attempt is one transaction as Options.Attempted sees it.
type Attempt struct {
	Path     outbound.Path
	ID       string
	Tenant   string
	Campaign string
	// Attempts counts the message's attempts before this one.
	Attempts int
	Outcome  *outbound.Outcome
}

// Shaper is the traffic shaping of the paths (*shaping.Shaper has it).
type Shaper interface {
	// Limits returns the effective limits of a path now.
	Limits(p outbound.Path) outbound.Limits
	// Gate says whether an item of the path may be delivered now.
	Gate(p outbound.Path) shaping.Gate
	// Observe takes the outcome of a transaction on a path; true means a
	// bounce rule matched it, and the recipients the server deferred
	// bounce.
	Observe(p outbound.Path, out *outbound.Outcome) bool
}

// SharedRate is a message rate shared by the nodes of a cluster.
type SharedRate interface {
	// Take spends one token of the path's shared rate: true, or false
	// and how long until one may be there.
	Take(p outbound.Path) (bool, time.Duration)
}

type nopMetrics struct{}

func (nopMetrics) Delivered(time.Duration) {}
func (nopMetrics) Bounced()                {}
func (nopMetrics) TransientFailure()       {}
func (nopMetrics) Expired()                {}
