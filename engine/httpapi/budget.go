package httpapi

import (
	"fmt"
	"net/http"
)

// buildBudget bounds what one request builds, so that templates and MIME
// encoding cannot turn a small request into a lot of memory (a 1 MiB
// substitution placed a hundred times in the message of each of eight
// recipients would be 800 MiB): each message at most Options.MaxMessageBytes
// ([[http_listener]] max_message_size), and all that the request builds at
// most Options.MaxInjectBytes (max_inject_bytes) — the messages it is to
// spool, and what was rendered for recipients that then failed. Rendering
// checks the room left before each piece is appended and stops at the
// bound (template.render, mimebuild.BuildLimited): the request is then
// refused with 413, and none of its messages is spooled.
type buildBudget struct {
	message int64 // the limit of one message
	total   int64 // the limit of the request
	left    int64 // what is left of total
}

func (s *Server) newBudget() *buildBudget {
	return &buildBudget{message: s.opts.MaxMessageBytes, total: s.opts.MaxInjectBytes, left: s.opts.MaxInjectBytes}
}

// limit is how large the next message may be.
func (b *buildBudget) limit() int {
	return int(min(b.message, b.left))
}

// spend counts n bytes built.
func (b *buildBudget) spend(n int) {
	b.left = max(0, b.left-int64(n))
}

// tooLarge is the 413 answer when what (a message) would pass limit: the
// request's total when less than a message's limit was left, else the
// message's.
func (b *buildBudget) tooLarge(what string) *apiError {
	if b.left < b.message {
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"the messages of this request would be larger than %d bytes together (max_inject_bytes)", b.total))
	}
	return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf(
		"%s would be larger than %d bytes (max_message_size)", what, b.message))
}
