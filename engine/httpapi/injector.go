package httpapi

import (
	"context"
	"errors"
)

// Injector is what the HTTP API needs of the engine: a durable spool.
type Injector interface {
	// Inject spools every message durably (all or nothing) and returns
	// their ids, one per message, in order. The API answers only after it
	// returns. It returns an error wrapping ErrQueueFull when the queue
	// cannot take them (the API answers 503), any other error for a failure
	// (500); either way no message of the call may be kept.
	Inject(ctx context.Context, msgs []Message) ([]string, error)
}

// Message is one message to spool: the envelope and the complete message.
type Message struct {
	From       string   // envelope sender (RFC 5321 reverse-path), "local@domain"
	Recipients []string // envelope recipients, "local@domain", at least one
	Body       []byte   // the full RFC 5322 message, CRLF line endings
	Tenant     string   // from the API key, or the request when trusted
	Campaign   string
	Priority   int // 0 bulk; 1 high (the engine may derive it from headers instead)
}

// ErrQueueFull is wrapped by Injector errors when the queue is over its
// depth limit or the spool is out of space: the API answers 503 with
// Retry-After.
var ErrQueueFull = errors.New("queue full")
