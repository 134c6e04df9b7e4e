package admin

import "time"

// The JSON shapes of the admin API. The CLI decodes the same types.

// Paths of the admin API.
const (
	PathQueueSummary   = "/api/admin/queue-summary/v1"
	PathInspectMessage = "/api/admin/inspect-message/v1"
	PathBounce         = "/api/admin/bounce/v1"
	PathSuspend        = "/api/admin/suspend/v1"
	PathRetry          = "/api/admin/retry/v1"
	PathHold           = "/api/admin/hold/v1"
	PathLiveness       = "/api/check-liveness/v1"
)

// Counts are the work-item counts of one row of the queue summary. A work
// item is the pending recipients of one message at one destination domain.
type Counts struct {
	Recipients int `json:"recipients"` // pending recipients
	Scheduled  int `json:"scheduled"`  // waiting for their due time (or DNS)
	Ready      int `json:"ready"`      // in a site's ready queue
	InFlight   int `json:"in_flight"`  // taken by a site worker
	Held       int `json:"held"`       // held by an admin suspension
}

func (c *Counts) add(o Counts) {
	c.Recipients += o.Recipients
	c.Scheduled += o.Scheduled
	c.Ready += o.Ready
	c.InFlight += o.InFlight
	c.Held += o.Held
}

// QueueRow is one scheduled queue ("campaign:tenant@domain").
type QueueRow struct {
	Name     string `json:"name"`
	Domain   string `json:"domain"`
	Tenant   string `json:"tenant,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Site     string `json:"site,omitempty"` // when some of its mail is ready or in flight
	Messages int    `json:"messages"`
	Counts
	EffectiveRate float64 `json:"effective_rate"` // the site's messages per second; 0 unlimited or unknown
	Suspended     bool    `json:"suspended"`
	Bouncing      bool    `json:"bouncing"`
}

// DomainRow sums the queues of one destination domain.
type DomainRow struct {
	Domain   string `json:"domain"`
	Messages int    `json:"messages"`
	Counts
	EffectiveRate float64 `json:"effective_rate"`
	Suspended     bool    `json:"suspended"` // every queue of the domain is
}

// GroupRow sums the queues of one tenant or campaign.
type GroupRow struct {
	Name string `json:"name"`
	Counts
	// EffectiveRate is the tenant's max_message_rate per second (0:
	// unlimited); campaigns have none.
	EffectiveRate float64 `json:"effective_rate"`
	Suspended     bool    `json:"suspended"` // every queue of the group is
}

// SiteRow is one ready queue: an (egress source, MX site) path.
type SiteRow struct {
	Site          string  `json:"site"`
	Source        string  `json:"source,omitempty"`
	Connections   int     `json:"connections"`    // effective connection limit
	EffectiveRate float64 `json:"effective_rate"` // messages per second now; 0 unlimited
	Ready         int     `json:"ready"`
	InFlight      int     `json:"in_flight"`
	Suspended     bool    `json:"suspended"`
	Backoff       bool    `json:"backoff"` // the site is in backoff mode (QueueSummaryV1.Backoff says why)
	// TunedRate is the rate the site's self-tuning learned (absent: it
	// does not tune, or has learned nothing yet); TuneReason why it last
	// moved.
	TunedRate  float64 `json:"tuned_rate,omitempty"`
	TuneReason string  `json:"tune_reason,omitempty"`
	// TunedConnections is the connection limit the site's self-tuning
	// has in force (absent: it does not tune).
	TunedConnections int `json:"tuned_connections,omitempty"`
}

// Totals sums the summary.
type Totals struct {
	Messages int `json:"messages"`
	Counts
	Suspensions int `json:"suspensions"`
	Bounces     int `json:"bounces"`
	Holds       int `json:"holds"`
	// Corrupt counts the messages the spool quarantined because they are
	// corrupt (not in Messages; left at 0 for a tenant's API key).
	Corrupt int `json:"corrupt"`
	// Dead counts the dead letters (not in Messages; left at 0 for a
	// tenant's API key: gannet dead list counts its own).
	Dead int `json:"dead"`
}

// QueueSummaryV1 answers GET /api/admin/queue-summary/v1.
type QueueSummaryV1 struct {
	Totals    Totals      `json:"totals"`
	Queues    []QueueRow  `json:"queues"`
	Domains   []DomainRow `json:"domains"`
	Tenants   []GroupRow  `json:"tenants"`
	Campaigns []GroupRow  `json:"campaigns"`
	Sites     []SiteRow   `json:"sites"` // left out for a tenant's API key
	// Backoff lists the sites in backoff mode, why and until when; left
	// out for a tenant's API key.
	Backoff []BackoffEntry `json:"backoff,omitempty"`
	// Tuned lists what the sites' self-tuning learned; left out for a
	// tenant's API key.
	Tuned []TuneEntry `json:"tuned,omitempty"`
	// Warmup lists today's allowance of each warming egress source per
	// provider; left out for a tenant's API key and without warm-up.
	Warmup []WarmupEntry `json:"warmup,omitempty"`
	// CorruptIDs lists the first MaxCorruptIDs quarantined messages
	// (lowest ids first) for inspect; left out for a tenant's API key.
	CorruptIDs []string `json:"corrupt_ids,omitempty"`
}

// MaxCorruptIDs bounds QueueSummaryV1.CorruptIDs.
const MaxCorruptIDs = 100

// RecipientInfo is one recipient of an inspected message.
type RecipientInfo struct {
	Email     string     `json:"email"`
	State     string     `json:"state"` // pending, delivered, bounced, expired
	Attempts  int        `json:"attempts"`
	LastReply string     `json:"last_reply,omitempty"`
	Domain    string     `json:"domain"`
	Site      string     `json:"site,omitempty"`     // pending recipients: where the domain routes now
	NextDue   *time.Time `json:"next_due,omitempty"` // pending recipients with a retry scheduled
	Held      bool       `json:"held,omitempty"`     // held by a suspension
	InFlight  bool       `json:"in_flight,omitempty"`
	// The recipient's DSN request (RFC 3461): NOTIFY ("SUCCESS,DELAY"),
	// ORCPT ("rfc822;addr", decoded), and whether its one "delayed" DSN
	// was sent.
	Notify       string `json:"notify,omitempty"`
	ORcpt        string `json:"orcpt,omitempty"`
	DelayDSNSent bool   `json:"delay_dsn_sent,omitempty"`
}

// MessageInformation is the body of InspectMessageV1 (KumoMTA's names for
// sender, recipient, num_attempts, due, data, meta).
type MessageInformation struct {
	Sender      string          `json:"sender"`
	Recipient   []string        `json:"recipient"`
	Recipients  []RecipientInfo `json:"recipients"`
	NumAttempts int             `json:"num_attempts"`
	Due         *time.Time      `json:"due"` // next attempt; null: due now
	Created     time.Time       `json:"created"`
	Size        int             `json:"size"`
	Tenant      string          `json:"tenant,omitempty"`
	Campaign    string          `json:"campaign,omitempty"`
	Priority    int             `json:"priority"`
	Meta        map[string]any  `json:"meta"`
	Headers     *string         `json:"headers,omitempty"` // want_body: the header section
	Data        *string         `json:"data,omitempty"`    // want_body: the whole message as spooled
	// The message's DSN parameters (RFC 3461): RET ("FULL", "HDRS") and
	// ENVID (decoded).
	Ret   string `json:"ret,omitempty"`
	EnvID string `json:"envid,omitempty"`
}

// States of an inspected message (InspectMessageV1.State).
const (
	// StateQueued: the message is in the queue; Message says where each
	// recipient stands.
	StateQueued = "queued"
	// StateCorrupt: the spool found the message corrupt and quarantined
	// it; Corrupt says why. It will not be delivered or bounced. Message
	// holds the envelope when it is known (kind "record"), and never the
	// body.
	StateCorrupt = "corrupt"
)

// InspectMessageV1 answers GET /api/admin/inspect-message/v1.
type InspectMessageV1 struct {
	ID      string             `json:"id"`
	State   string             `json:"state"` // StateQueued or StateCorrupt
	Message MessageInformation `json:"message"`
	Corrupt *CorruptInfo       `json:"corrupt,omitempty"` // StateCorrupt only
}

// CorruptInfo says why the spool quarantined a message (queue.Corruption).
type CorruptInfo struct {
	// Kind is "index" (its index entry does not decode: nothing of the
	// message is known for sure) or "record" (its body record does not
	// read back: the envelope is known, the body is lost).
	Kind        string    `json:"kind"`
	Reason      string    `json:"reason"`
	RawSize     int64     `json:"raw_size"`    // bytes of the bad index value or body record
	Quarantined time.Time `json:"quarantined"` // when the spool took it out
}

// RuleRequest is the body of POST /api/admin/bounce/v1 and
// /api/admin/suspend/v1 (KumoMTA's BounceV1Request and SuspendV1Request,
// plus site).
type RuleRequest struct {
	Domain   string     `json:"domain,omitempty"`
	Campaign string     `json:"campaign,omitempty"`
	Tenant   string     `json:"tenant,omitempty"`
	Site     string     `json:"site,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Duration string     `json:"duration,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
}

// BounceV1Response answers POST /api/admin/bounce/v1: the counts of the
// initial sweep.
type BounceV1Response struct {
	ID           string         `json:"id"`
	Bounced      map[string]int `json:"bounced"`
	TotalBounced int            `json:"total_bounced"`
}

// SuspendV1Response answers POST /api/admin/suspend/v1.
type SuspendV1Response struct {
	ID string `json:"id"`
}

// RuleEntry is one bounce or suspension in force (GET lists, DELETE of a
// bounce).
type RuleEntry struct {
	ID string `json:"id"`
	// Origin says who made the rule: "api" (the admin API or CLI),
	// "policy" (a policy script), "rule" (a shaping rule's automatic
	// suspension of a site, listed with the suspensions; it ends by
	// itself and cannot be resumed by id).
	Origin   string     `json:"origin"`
	Domain   string     `json:"domain,omitempty"`
	Campaign string     `json:"campaign,omitempty"`
	Tenant   string     `json:"tenant,omitempty"`
	Site     string     `json:"site,omitempty"`
	Source   string     `json:"source,omitempty"` // origin "rule": the egress source of the suspended path
	Reason   string     `json:"reason"`
	Duration string     `json:"duration"` // time left ("" for a suspension until resumed)
	Expires  *time.Time `json:"expires"`
	Created  time.Time  `json:"created"`
	// Bounces: recipients bounced so far, by queue name.
	Bounced      map[string]int `json:"bounced,omitempty"`
	TotalBounced int            `json:"total_bounced"`
	// Suspensions and holds: work items held now.
	Held int `json:"held"`
	// Holds by message id: the messages held.
	IDs []string `json:"ids,omitempty"`
	// Xfer rules: the other node's SMTP listener ("host:port") the mail
	// is handed to.
	Target string `json:"target,omitempty"`
}

// CancelRequest is the body of DELETE /api/admin/bounce/v1 and
// /api/admin/suspend/v1. A suspension may also be named by its selector:
// every suspension with exactly these fields is resumed.
type CancelRequest struct {
	ID       string `json:"id,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Site     string `json:"site,omitempty"`
}

// ResumeV1Response answers DELETE /api/admin/suspend/v1.
type ResumeV1Response struct {
	Resumed []string `json:"resumed"`
}

// RetryRequest is the body of POST /api/admin/retry/v1: a selector (as
// for a bounce or suspension) or message ids, not both.
type RetryRequest struct {
	Domain   string   `json:"domain,omitempty"`
	Campaign string   `json:"campaign,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Site     string   `json:"site,omitempty"`
	IDs      []string `json:"ids,omitempty"`
}

// RetryV1Response answers POST /api/admin/retry/v1: how much deferred mail
// was made due now.
type RetryV1Response struct {
	Retried    int `json:"retried"`    // messages
	Recipients int `json:"recipients"` // their pending recipients made due
}

// MaxRetryIDs bounds the ids of one retry request.
const MaxRetryIDs = 10000

// HoldRequest is the body of POST /api/admin/hold/v1: a selector or
// message ids, not both.
type HoldRequest struct {
	Domain   string   `json:"domain,omitempty"`
	Campaign string   `json:"campaign,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Site     string   `json:"site,omitempty"`
	IDs      []string `json:"ids,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// HoldV1Response answers POST /api/admin/hold/v1: the hold's id.
type HoldV1Response struct {
	ID string `json:"id"`
}

// ReleaseRequest is the body of DELETE /api/admin/hold/v1: a hold's id;
// ids (each a hold's id or a held message's id); or the selector a hold
// was made with (every hold with exactly these fields).
type ReleaseRequest struct {
	ID       string   `json:"id,omitempty"`
	IDs      []string `json:"ids,omitempty"`
	Domain   string   `json:"domain,omitempty"`
	Campaign string   `json:"campaign,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Site     string   `json:"site,omitempty"`
}

// ReleaseV1Response answers DELETE /api/admin/hold/v1: the holds ended and
// the messages taken out of holds by id.
type ReleaseV1Response struct {
	Released []string `json:"released"`
}

// ErrorResponse is every refusal.
type ErrorResponse struct {
	Error string `json:"error"`
}

// TuneEntry is what a site's self-tuning ([shaping] tune = true) learned,
// in the queue summary (tuned).
type TuneEntry struct {
	Site string `json:"site"`
	// Rate is the tuned message rate per second (per egress source).
	Rate float64 `json:"rate"`
	// Throttled is the rate at which the site last pushed back (absent:
	// it has not).
	Throttled float64 `json:"throttled,omitempty"`
	// Reason says why Rate last moved: "deferrals 6.3% over 30s at
	// 21.4/s: down to 85%".
	Reason string `json:"reason"`
	// Connections is the tuned connection limit (per egress source);
	// ConnectionsRefusedAt the count at which the site last refused
	// connections or slowed down (absent: it has not);
	// ConnectionsReason why Connections last moved ("refused 12 of 80
	// sessions at 5 connections: down to 4"; absent: not yet moved).
	Connections          int    `json:"connections,omitempty"`
	ConnectionsRefusedAt int    `json:"connections_refused_at,omitempty"`
	ConnectionsReason    string `json:"connections_reason,omitempty"`
	// Changed is when the rate or the connection count last moved.
	Changed time.Time `json:"changed"`
}
