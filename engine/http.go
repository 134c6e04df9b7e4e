package engine

import (
	"context"
	"net/netip"
	"time"

	"gannet/engine/httpapi"
	"gannet/engine/policy"
	"gannet/msgheader"
)

// buildHTTP prepares every [[http_listener]]: the inject API (with this
// engine as its Injector), /metrics, liveness, and the admin API.
func (e *Engine) buildHTTP() error {
	for _, l := range e.cfg.HTTPListeners {
		srv := httpapi.New(httpapi.Options{
			Listen:       l.Listen,
			TrustedHosts: l.TrustedHosts.Prefixes(),
			Services:     append([]string{}, l.Services...),
			APIKeys: func(bearer string) (string, bool) {
				k := e.conf().APIKey(bearer) // [[api_key]] follows reloads
				if k == nil {
					return "", false
				}
				return k.Tenant, true
			},
			Injector:        e,
			Draining:        e.Draining,
			Metrics:         e.metrics,
			Admin:           e.adminHandler(),
			MaxMessageBytes: l.MaxMessageSize.Bytes(),
			MaxInjectBytes:  l.MaxInjectBytes.Bytes(),
			Now:             e.now,
			Hostname:        e.hostname(),
			Logger:          e.log,
			Intercept:       e.intercept,   // a policy script's http_request
			OnRefusal:       e.httpRefusal, // Rejection records (rejections.go)
		})
		e.https = append(e.https, srv)
	}
	return nil
}

// hostname is the name Gannet gives itself in generated headers.
func (e *Engine) hostname() string {
	if len(e.cfg.SMTPListeners) > 0 && e.cfg.SMTPListeners[0].Hostname != "" {
		return e.cfg.SMTPListeners[0].Hostname
	}
	return e.cfg.Delivery.EHLOName
}

// Inject implements httpapi.Injector through the store path (take): the
// messages of one call are one batch, made durable all of them or none,
// and only then queued for delivery. A refusal is classified as SMTP's is
// (injectError, replies.go): queue or disk full → httpapi.ErrQueueFull
// (503), anything else → 500.
func (e *Engine) Inject(ctx context.Context, msgs []httpapi.Message) ([]string, error) {
	var peer netip.Addr
	if c, ok := httpapi.CallerFrom(ctx); ok {
		peer = c.Addr
	}
	host := e.hostname()
	trace := &httpTrace{peer: peer, host: host}
	batch := make([]arrival, len(msgs))
	for i := range msgs {
		in := &msgs[i]
		batch[i] = arrival{
			msg: policy.Message{
				Hostname:   host,
				Listener:   "http",
				Sender:     in.From,
				Recipients: in.Recipients,
				Body:       in.Body,
				Tenant:     in.Tenant,
				Campaign:   in.Campaign,
				Priority:   in.Priority,
				// Every caller is trusted or holds an API key.
				Trusted: true,
			},
			received: trace,
			peer:     peer,
		}
	}
	ids, err := e.take(batch)
	if err != nil {
		return nil, injectError(err)
	}
	return ids, nil
}

// httpTrace writes the Received field of a message injected over HTTP: RFC
// 5321 §4.4 form with "HTTP" as the protocol, without HELO name or "for"
// clause, by the same builder as SMTP's (msgheader.Trace), so an IPv6
// client is written "[IPv6:…]" as RFC 5321 §4.1.3 wants.
type httpTrace struct {
	peer netip.Addr // the API caller; invalid when unknown
	host string     // this host's name, the "by" clause
}

// ReceivedHeader implements receivedField.
func (t *httpTrace) ReceivedHeader(id string, now time.Time) []byte {
	tr := msgheader.Trace{Peer: t.peer, By: t.host, With: "HTTP", ID: id, Time: now}
	return tr.AppendReceived(make([]byte, 0, 192))
}
