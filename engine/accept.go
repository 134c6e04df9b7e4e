package engine

import (
	"context"
	"errors"
	"strings"
	"time"

	"gannet/engine/inbound"
	"gannet/engine/logrec"
	"gannet/queue"
	"gannet/smtpwire"
)

// errQueueFull is returned when max_queue_depth is reached.
var errQueueFull = errors.New("queue full")

// CheckMail refuses new transactions while the queue is full or the spool
// cannot take mail (disk full): 452 4.3.1 (RFC 3463 "mail system full").
// It runs on an event loop and does not block.
func (e *Engine) CheckMail(*inbound.Incoming) *smtpwire.Reply {
	if err := e.admit(); err != nil {
		r := smtpwire.ReplyQueueFull
		return &r
	}
	return nil
}

// admit reports whether a new message may be taken now.
func (e *Engine) admit() error {
	if max := e.cfg.Queue.MaxQueueDepth; max > 0 && e.delivery.Messages() >= max {
		return errQueueFull
	}
	return e.spool.Healthy()
}

// Accept makes a received message durable and queues it for delivery. It
// runs on an inbound worker goroutine.
func (e *Engine) Accept(_ context.Context, in *inbound.Incoming) smtpwire.Reply {
	if err := e.admit(); err != nil {
		return smtpwire.ReplyQueueFull
	}
	env := in.Envelope
	meta := e.readMeta(in.Body, in.Tenant != "" || e.trusted(in))
	tenant := in.Tenant
	if tenant == "" {
		tenant = meta.tenant
	}
	now := e.now()
	id := e.ids.Next()
	recv := in.ReceivedHeader(id, now)
	body := make([]byte, 0, len(recv)+len(meta.body))
	body = append(append(body, recv...), meta.body...)

	m := &queue.Message{
		ID:       id,
		From:     env.From.Addr,
		Tenant:   tenant,
		Campaign: meta.campaign,
		Priority: meta.priority,
		Created:  now,
	}
	m.Recipients = make([]queue.Recipient, len(env.Rcpts))
	for i, r := range env.Rcpts {
		m.Recipients[i] = queue.Recipient{Addr: r.Addr}
	}
	if err := e.store(m, body); err != nil {
		e.log.Error("spool append", "err", err)
		return smtpwire.ReplyQueueFull
	}
	e.metrics.Received(in.Listener).Inc()
	e.recordReception(m, in.Listener, in.Peer.Addr().String(), env.Helo)
	return smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=" + id}}
}

// store appends m to the spool (durably), measures the commit and hands the
// message to delivery.
func (e *Engine) store(m *queue.Message, body []byte) error {
	t0 := time.Now()
	if err := e.spool.Append(m, body); err != nil {
		return err
	}
	e.metrics.SpoolCommit.UpdateDuration(t0)
	if err := e.delivery.Enqueue(m); err != nil {
		// The message is durable; it is picked up again at the next start.
		e.log.Error("enqueue", "id", m.ID, "err", err)
	}
	return nil
}

func (e *Engine) recordReception(m *queue.Message, listener, peer, helo string) {
	now := e.now()
	for _, r := range m.Recipients {
		e.records.Write(&logrec.Record{
			Type:        logrec.Reception,
			ID:          m.ID,
			Sender:      m.From,
			Recipient:   r.Addr,
			Size:        int64(m.Size),
			Response:    logrec.Response{Code: 250, EnhancedCode: "2.0.0", Content: "OK id=" + m.ID},
			PeerAddress: logrec.PeerAddress{Name: helo, Addr: peer},
			Tenant:      m.Tenant,
			Campaign:    m.Campaign,
			Timestamp:   now,
			Created:     m.Created,
			Listener:    listener,
		})
	}
}

// trusted reports whether the client may set routing metadata by header:
// only hosts in the listener's relay_hosts.
func (e *Engine) trusted(in *inbound.Incoming) bool {
	l := e.cfg.SMTPListener(in.Listener)
	return l != nil && l.RelayHosts.Contains(in.Peer.Addr())
}

// msgMeta is the routing metadata read from a message's header.
type msgMeta struct {
	tenant, campaign string
	priority         int
	body             []byte // the message, meta headers removed when configured
}

// readMeta reads the [meta] headers from the message header section. Values
// count only when trusted; the headers are removed when strip_meta_headers
// is set, trusted or not, so they never leak to the recipient.
func (e *Engine) readMeta(body []byte, trusted bool) msgMeta {
	mc := e.cfg.Meta
	out := msgMeta{body: body}
	names := [3]string{mc.TenantHeader, mc.CampaignHeader, mc.PriorityHeader}
	var strip [][2]int
	forEachHeader(body, func(name string, value []byte, start, end int) {
		for i, n := range names {
			if n == "" || !strings.EqualFold(name, n) {
				continue
			}
			v := strings.TrimSpace(unfold(value))
			if trusted {
				switch i {
				case 0:
					out.tenant = v
				case 1:
					out.campaign = v
				case 2:
					if strings.EqualFold(v, "transactional") {
						out.priority = 1
					}
				}
			}
			if mc.StripMetaHeaders {
				strip = append(strip, [2]int{start, end})
			}
		}
	})
	if len(strip) > 0 {
		nb := make([]byte, 0, len(body))
		prev := 0
		for _, s := range strip {
			nb = append(nb, body[prev:s[0]]...)
			prev = s[1]
		}
		out.body = append(nb, body[prev:]...)
	}
	return out
}

// forEachHeader calls fn for every header field of the message's header
// section (RFC 5322 §2.2), with the field's name, its raw value (folding
// included, without the final CRLF) and the byte range of the whole field.
func forEachHeader(msg []byte, fn func(name string, value []byte, start, end int)) {
	i := 0
	for i < len(msg) {
		if msg[i] == '\r' || msg[i] == '\n' {
			return // the empty line: end of the header section
		}
		start := i
		// The field runs to a line end not followed by WSP (folding).
		end := i
		for {
			nl := indexByte(msg[end:], '\n')
			if nl < 0 {
				end = len(msg)
				break
			}
			end += nl + 1
			if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
				break
			}
		}
		line := msg[start:end]
		if colon := indexByte(line, ':'); colon > 0 {
			v := line[colon+1:]
			for len(v) > 0 && (v[len(v)-1] == '\n' || v[len(v)-1] == '\r') {
				v = v[:len(v)-1]
			}
			fn(string(line[:colon]), v, start, end)
		}
		i = end
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// unfold removes folding line breaks (RFC 5322 §2.2.3).
func unfold(v []byte) string {
	s := string(v)
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(s)
	}
	return s
}
