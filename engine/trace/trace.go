// Package trace streams live SMTP conversations to whoever asks, as
// KumoMTA's kcli trace-smtp-server and trace-smtp-client do: the inbound
// sessions (engine/inbound) and the outbound ones (engine/outbound)
// publish what they read and write to a Hub, and each subscriber (one
// GET /api/admin/trace/v1/server or /client stream) gets the events its
// Filter matches.
//
// Nothing is made when nobody traces: a session asks Hub.Active (one
// atomic load) before it builds an event. A subscriber that reads slowly
// never slows a session: each has a bounded buffer, and events that do
// not fit are dropped and counted; the count is handed to the subscriber
// with the next event that fits (Event.Dropped). Message bodies and AUTH
// secrets never enter an event: the sessions elide them before publishing.
package trace

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Side says which way a session goes.
type Side string

// The sides.
const (
	Server Side = "server" // a client talking to a Gannet listener
	Client Side = "client" // Gannet delivering to an MX host or smarthost
)

// Kind says what an event is.
type Kind string

// The kinds of event.
const (
	Connect Kind = "connect" // a session began (or was first seen by a trace)
	Command Kind = "command" // a command line sent by the client (AUTH secrets elided)
	Reply   Kind = "reply"   // a reply sent by the server, all its lines
	Body    Kind = "body"    // message data, elided: Text says how much
	TLS     Kind = "tls"     // a TLS handshake ended: version, cipher, server name
	Close   Kind = "close"   // the session ended
	Error   Kind = "error"   // an I/O error or a timeout
	Dropped Kind = "dropped" // only Dropped is set: events lost because the reader was slow
)

// Event is one thing that happened in a traced session, one JSON object per
// line of the trace stream.
type Event struct {
	Time    time.Time      `json:"time"`
	Side    Side           `json:"side"`
	Session uint32         `json:"session"`            // a number unique to the session in this process
	Kind    Kind           `json:"kind"`               // what happened
	Text    string         `json:"text,omitempty"`     // the command, the reply, what was elided, the TLS details
	Peer    netip.AddrPort `json:"peer,omitzero"`      // the client (server side) or the MX host (client side)
	Local   netip.AddrPort `json:"local,omitzero"`     // Gannet's end, when known
	Listen  string         `json:"listener,omitempty"` // [[smtp_listener]] name (server side)
	Host    string         `json:"host,omitempty"`     // MX host name (client side)
	Site    string         `json:"site,omitempty"`     // MX site (client side)
	Domain  string         `json:"domain,omitempty"`   // the destination domain that led to the session (client side)
	// Dropped counts the events this subscriber lost, because it read too
	// slowly, since the last event it got.
	Dropped uint64 `json:"dropped,omitempty"`
}

// Filter chooses the events a subscriber gets. Zero fields match anything.
type Filter struct {
	Side     Side
	Peer     netip.Prefix // the peer address is inside it
	Listener string       // server side: listener name
	Domain   string       // client side: destination domain (case-insensitive)
	Site     string       // client side: MX site name, or a substring of it
}

// Match reports whether ev passes f.
func (f *Filter) Match(ev *Event) bool {
	if f.Side != "" && f.Side != ev.Side {
		return false
	}
	if f.Peer.IsValid() && !f.Peer.Contains(ev.Peer.Addr().Unmap()) {
		return false
	}
	if f.Listener != "" && f.Listener != ev.Listen {
		return false
	}
	if f.Domain != "" && !strings.EqualFold(f.Domain, ev.Domain) {
		return false
	}
	if f.Site != "" && !strings.Contains(strings.ToLower(ev.Site), strings.ToLower(f.Site)) {
		return false
	}
	return true
}

// DefaultBuffer is how many events a subscriber may have waiting.
const DefaultBuffer = 4096

// Hub fans published events out to its subscribers. The zero value is
// a nil *Hub is never active; make one with NewHub.
type Hub struct {
	active   atomic.Int32
	gen      atomic.Uint32 // moves at every Subscribe and Close
	sessions atomic.Uint32
	now      func() time.Time

	mu   sync.RWMutex
	subs map[*Subscription]struct{}

	done     chan struct{} // closed by Close
	doneOnce sync.Once
}

// NewHub returns a Hub; now is its clock (nil: time.Now).
func NewHub(now func() time.Time) *Hub {
	if now == nil {
		now = time.Now
	}
	return &Hub{now: now, done: make(chan struct{})}
}

// Done is closed when the Hub is closed: the trace streams end.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Close ends every trace stream (at shutdown, so that the HTTP server
// need not wait for them).
func (h *Hub) Close() { h.doneOnce.Do(func() { close(h.done) }) }

// Active reports whether anyone traces: the one check a session makes on
// its hot path.
func (h *Hub) Active() bool { return h != nil && h.active.Load() > 0 }

// Gen returns a number that changes whenever a subscriber comes or goes
// (0 until the first one comes): a session that remembers it re-checks
// whether it is traced only when it moved. Nil: 0.
func (h *Hub) Gen() uint32 {
	if h == nil {
		return 0
	}
	return h.gen.Load()
}

// bumpGen moves gen, never to 0 (0 is "nobody ever traced").
func (h *Hub) bumpGen() {
	if h.gen.Add(1) == 0 {
		h.gen.Add(1)
	}
}

// NewSession returns a number, never 0, for a session that is about to
// publish (unique until 2³² sessions were traced).
func (h *Hub) NewSession() uint32 {
	for {
		if n := h.sessions.Add(1); n != 0 {
			return n
		}
	}
}

// Subscription is one reader of the Hub.
type Subscription struct {
	h       *Hub
	filter  Filter
	ch      chan Event
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe adds a subscriber that gets the events f matches, at most
// buffer of them waiting (0: DefaultBuffer). Close it when done.
func (h *Hub) Subscribe(f Filter, buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	s := &Subscription{h: h, filter: f, ch: make(chan Event, buffer)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[*Subscription]struct{})
	}
	h.subs[s] = struct{}{}
	h.active.Add(1)
	h.bumpGen()
	h.mu.Unlock()
	return s
}

// Events returns the channel the subscriber reads.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Dropped returns how many events were dropped for this subscriber so far
// and not yet reported in an event.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close removes the subscriber. The channel is not closed: a publisher may
// still hold it.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.h.mu.Lock()
		delete(s.h.subs, s)
		s.h.active.Add(-1)
		s.h.bumpGen()
		s.h.mu.Unlock()
	})
}

// Publish hands ev to every subscriber whose filter matches it, without
// waiting: a full subscriber loses it (counted). Time is set if zero.
func (h *Hub) Publish(ev Event) {
	if !h.Active() {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = h.now()
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if !s.filter.Match(&ev) {
			continue
		}
		e := ev
		e.Dropped = s.dropped.Swap(0)
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(e.Dropped + 1)
		}
	}
}

// Wants reports whether any subscriber's filter could match an event of
// side with these session attributes; sessions use it to skip building
// events nobody reads. Fields of ev beyond those are ignored.
func (h *Hub) Wants(ev *Event) bool {
	if !h.Active() {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.filter.Match(ev) {
			return true
		}
	}
	return false
}
