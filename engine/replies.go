package engine

// How a message that the relay cannot take is answered. Every failure to
// admit or spool a message — SMTP MAIL (CheckMail), and the store path
// (take) behind the end of DATA or BDAT (Accept) and both HTTP inject
// endpoints (Inject) — goes through one classification, storageFull, and
// gets its reply from it:
//
//	cause                                   SMTP        HTTP
//	queue at [queue] max_queue_depth        452 4.3.1   503 + Retry-After
//	spool disk full (ENOSPC, EDQUOT, or     452 4.3.1   503 + Retry-After
//	  less free than the spool's floor)
//	anything else (EIO on write or fsync,   451 4.3.0   500
//	  spool closed, signing failure, an
//	  error of the message policy)
//
// RFC 3463 §3.4 names X.3.1 "mail system full" and X.3.0 "other or
// undefined mail system status"; both are transient, so a client retries
// and never takes a failure for a "250". The text sent to the peer is
// generic; the cause goes to the log.

import (
	"errors"
	"fmt"

	"gannet/engine/httpapi"
	"gannet/queue"
	"gannet/smtpwire"
)

// errQueueFull is returned when max_queue_depth is reached.
var errQueueFull = errors.New("queue full")

// replyLocalError answers a message that could not be prepared or spooled
// for a reason other than a full queue or disk: 451 4.3.0, try again later
// (RFC 3463 §3.4, "other or undefined mail system status").
var replyLocalError = smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"Local error in processing, try again later"}}

// storageFull reports whether err means that the relay has no room for
// mail now: the queue is at max_queue_depth, or the spool's disk is full
// (queue.ErrNoSpace: a write failed with ENOSPC or EDQUOT, or less than the
// spool's free-space floor is left). Such a refusal ends by itself once
// deliveries free room.
func storageFull(err error) bool {
	return errors.Is(err, errQueueFull) || errors.Is(err, queue.ErrNoSpace)
}

// spoolReply is the SMTP answer to a message (or a MAIL command) that the
// relay cannot take because of err: 452 4.3.1 (RFC 3463 §3.4, "mail system
// full") when storageFull; else the reply err carries (smtpwire.ReplyFor,
// the one error model), or 451 4.3.0. It is never a positive reply.
func spoolReply(err error) smtpwire.Reply {
	if storageFull(err) {
		return smtpwire.ReplyQueueFull
	}
	if r := smtpwire.ReplyFor(err, replyLocalError); !r.Positive() {
		return r
	}
	return replyLocalError
}

// injectError is spoolReply's twin for the HTTP API (httpapi.Injector):
// when storageFull, err wrapped in httpapi.ErrQueueFull, which the API
// answers with 503 and Retry-After; else err as it is, answered with 500.
func injectError(err error) error {
	if storageFull(err) && !errors.Is(err, httpapi.ErrQueueFull) {
		return fmt.Errorf("%w: %w", httpapi.ErrQueueFull, err)
	}
	return err
}
