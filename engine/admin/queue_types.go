package admin

import "time"

// Paths of the queue list, its actions and the dead letters.
const (
	PathQueue       = "/api/admin/queue/v1"
	PathQueueBounce = "/api/admin/queue/v1/bounce"
	PathQueueDelete = "/api/admin/queue/v1/delete"
	PathDeadLetters = "/api/admin/dead-letters/v1"
)

// StateDead is the state of a dead letter in a list (state=dead).
const StateDead = "dead"

// ListedRecipient is a recipient of a listed message: the pending ones of
// a queued message, those not delivered of a dead letter.
type ListedRecipient struct {
	Email     string `json:"email"`
	State     string `json:"state"` // pending; expired or bounced (dead letters)
	Attempts  int    `json:"attempts"`
	LastReply string `json:"last_reply,omitempty"`
}

// ListedMessage is one message of GET /api/admin/queue/v1 or
// /api/admin/dead-letters/v1.
type ListedMessage struct {
	ID          string            `json:"id"`
	Sender      string            `json:"sender"`
	Tenant      string            `json:"tenant,omitempty"`
	Campaign    string            `json:"campaign,omitempty"`
	Created     time.Time         `json:"created"`
	Due         *time.Time        `json:"due,omitempty"`  // queued: the next attempt; null: due now
	Died        *time.Time        `json:"died,omitempty"` // dead letters: when it became one
	NumAttempts int               `json:"num_attempts"`
	Size        int               `json:"size"`
	State       string            `json:"state"` // scheduled, ready, suspended, held, dead
	Recipients  []ListedRecipient `json:"recipients"`
	Data        *string           `json:"data,omitempty"` // dead-letter show with body=1
}

// GroupCount is one group of a list with group_by.
type GroupCount struct {
	Key        string `json:"key"`
	Messages   int    `json:"messages"`
	Recipients int    `json:"recipients"`
}

// QueueListV1 answers GET /api/admin/queue/v1 and GET
// /api/admin/dead-letters/v1 (without id): a page of messages in id order
// with the cursor of the next ("" at the end), or with group_by the
// counts.
type QueueListV1 struct {
	Messages []ListedMessage `json:"messages"`
	Next     string          `json:"next,omitempty"`
	// Matched counts the messages that match after the cursor (with
	// group_by: all of them).
	Matched int          `json:"matched"`
	GroupBy string       `json:"group_by,omitempty"`
	Groups  []GroupCount `json:"groups,omitempty"`
}

// QueueActionRequest is the body of POST /api/admin/queue/v1/bounce and
// /delete: message ids, or the filters of a list (at least one), not both.
type QueueActionRequest struct {
	IDs         []string `json:"ids,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Site        string   `json:"site,omitempty"`
	Tenant      string   `json:"tenant,omitempty"`
	Campaign    string   `json:"campaign,omitempty"`
	Sender      string   `json:"sender,omitempty"`
	Recipient   string   `json:"recipient,omitempty"`
	MinAttempts int      `json:"min_attempts,omitempty"`
	Older       string   `json:"older,omitempty"`
	State       string   `json:"state,omitempty"`
	Reason      string   `json:"reason,omitempty"`
}

// QueueActionV1Response answers the queue actions: the messages acted on
// and their pending recipients.
type QueueActionV1Response struct {
	Messages   int `json:"messages"`
	Recipients int `json:"recipients"`
}

// DeadLetterRequest is the body of POST (requeue) and DELETE (purge)
// /api/admin/dead-letters/v1: dead-letter ids, or filters (at least one of
// domain, tenant, campaign; since narrows them), not both.
type DeadLetterRequest struct {
	IDs      []string `json:"ids,omitempty"`
	Domain   string   `json:"domain,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Campaign string   `json:"campaign,omitempty"`
	Since    string   `json:"since,omitempty"`
}

// DeadLetterV1Response answers a requeue or a purge: the dead letters
// requeued or purged.
type DeadLetterV1Response struct {
	Count int      `json:"count"`
	IDs   []string `json:"ids"`
}
