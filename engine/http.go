package engine

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"gannet/engine/config"
	"gannet/engine/httpapi"
	"gannet/engine/policy"
	"gannet/msgheader"
)

// buildHTTP prepares every [[http_listener]]: the inject API (with this
// engine as its Injector), /metrics, liveness, and the admin API.
func (e *Engine) buildHTTP() error {
	for _, l := range e.cfg.HTTPListeners {
		e.https = append(e.https, e.newHTTPServer(l))
		e.httpCfgs = append(e.httpCfgs, l)
	}
	return nil
}

// newHTTPServer builds the server of one [[http_listener]].
func (e *Engine) newHTTPServer(l config.HTTPListener) *httpapi.Server {
	return httpapi.New(httpapi.Options{
		Listen:       l.Listen,
		TrustedHosts: l.TrustedHosts.Prefixes(),
		// Behind a load balancer (contract.md, "Behind a proxy").
		TrustedProxies: l.TrustedProxies.Prefixes(),
		ProxyProtocol:  l.ProxyProtocol,
		OnProxyRefused: func(reason string, peer netip.AddrPort, err error) {
			e.metrics.ProxyRefused("http", reason).Inc()
			e.log.Warn("PROXY protocol: http connection refused", "listen", l.Listen, "peer", peer.String(), "reason", reason, "err", err)
		},
		Services: append([]string{}, l.Services...),
		APIKeys: func(bearer string) (string, bool) {
			k := e.conf().APIKey(bearer) // [[api_key]] follows reloads
			if k == nil {
				return "", false
			}
			return k.Tenant, true
		},
		KeyRole: func(bearer string) string {
			if k := e.conf().APIKey(bearer); k != nil {
				return k.Role
			}
			return ""
		},
		Console:         e.console,
		Injector:        e,
		Draining:        e.Draining,
		Metrics:         e.metrics,
		Admin:           e.adminHandler(),
		MaxMessageBytes: l.MaxMessageSize.Bytes(),
		MaxInjectBytes:  l.MaxInjectBytes.Bytes(),
		Now:             e.now,
		Hostname:        e.hostname(),
		Logger:          e.log,
		Intercept:       e.intercept,      // a policy script's http_request
		OnRefusal:       e.httpRefusal,    // Rejection records (rejections.go)
		Suppressed:      e.httpSuppressed, // the suppression list (suppression.go)
	})
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

// httpPlan is what a reload does to the HTTP listeners, prepared by
// prepareHTTP (new sockets already listening) and done by commit, or
// undone by abort.
type httpPlan struct {
	servers  []*httpapi.Server
	cfgs     []config.HTTPListener
	replace  map[*httpapi.Server]*httpapi.Server // a listener whose settings changed → the server with the new ones
	started  []*httpapi.Server
	removed  []*httpapi.Server
	messages []string
}

// prepareHTTP matches the [[http_listener]] of a new configuration with
// those running, by listen address: the same settings keep their server;
// changed settings keep the socket and serve new requests with the new
// settings (httpapi.Server.Replace); a new address is listened on now; an
// address no longer configured is shut down on commit (requests in
// progress finish).
func (e *Engine) prepareHTTP(cfgs []config.HTTPListener) (*httpPlan, error) {
	plan := &httpPlan{replace: map[*httpapi.Server]*httpapi.Server{}}
	used := make([]bool, len(e.https))
	for _, l := range cfgs {
		j := -1
		for i, old := range e.httpCfgs {
			if !used[i] && old.Listen == l.Listen {
				j = i
				break
			}
		}
		if j >= 0 {
			used[j] = true
			srv := e.https[j]
			if !reflect.DeepEqual(e.httpCfgs[j], l) {
				plan.replace[srv] = e.newHTTPServer(l)
				plan.messages = append(plan.messages, fmt.Sprintf("http_listener %s changed", l.Listen))
			}
			plan.servers = append(plan.servers, srv)
			plan.cfgs = append(plan.cfgs, l)
			continue
		}
		srv := e.newHTTPServer(l)
		if err := srv.Start(); err != nil {
			plan.abort()
			return nil, err
		}
		plan.started = append(plan.started, srv)
		plan.servers = append(plan.servers, srv)
		plan.cfgs = append(plan.cfgs, l)
		plan.messages = append(plan.messages, fmt.Sprintf("http_listener %s added (listening on %s)", l.Listen, srv.Addr()))
	}
	for i, srv := range e.https {
		if !used[i] {
			plan.removed = append(plan.removed, srv)
			plan.messages = append(plan.messages, fmt.Sprintf("http_listener %s removed (requests in progress finish)", e.httpCfgs[i].Listen))
		}
	}
	return plan, nil
}

// abort closes the listeners prepareHTTP opened.
func (p *httpPlan) abort() {
	for _, srv := range p.started {
		_ = srv.Shutdown(context.Background())
	}
}

// commit puts the plan in force and returns what it changed.
func (p *httpPlan) commit(e *Engine) []string {
	for old, n := range p.replace {
		old.Replace(n)
	}
	e.https, e.httpCfgs = p.servers, p.cfgs
	for _, srv := range p.removed {
		e.retiring.Add(1)
		go func() {
			// In the background: the reload may have come in as a request
			// on this very listener, which its Shutdown waits for.
			defer e.retiring.Done()
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				e.log.Warn("http listener removed", "addr", srv.Addr(), "err", err)
			}
		}()
	}
	return p.messages
}
