package engine

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"gannet/engine/httpapi"
	"gannet/queue"
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
			Metrics:         e.metrics,
			Admin:           e.adminHandler(),
			MaxMessageBytes: l.MaxMessageSize.Bytes(),
			MaxInjectBytes:  l.MaxInjectBytes.Bytes(),
			Now:             e.now,
			Hostname:        e.hostname(),
			Logger:          e.log,
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

// maxParallelAppends bounds the goroutines one Inject call uses to append
// its messages, so that they share group commits.
const maxParallelAppends = 64

// Inject implements httpapi.Injector: every message is made durable, or
// none is (those already appended are removed again), and only then are
// they queued for delivery. A refusal is classified as SMTP's is
// (injectError, replies.go): queue or disk full → httpapi.ErrQueueFull
// (503), anything else → 500.
func (e *Engine) Inject(ctx context.Context, msgs []httpapi.Message) ([]string, error) {
	if err := e.admit(); err != nil {
		return nil, injectError(err)
	}
	if max := e.conf().Queue.MaxQueueDepth; max > 0 && e.delivery.Messages()+len(msgs) > max {
		return nil, injectError(errQueueFull)
	}
	var peer netip.Addr
	if c, ok := httpapi.CallerFrom(ctx); ok {
		peer = c.Addr
	}
	now := e.now()
	host := e.hostname()
	qms := make([]*queue.Message, len(msgs))

	// Prepare (edit and sign) and append in parallel: the signatures use
	// every core and the appends share fsyncs.
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelAppends)
	for i := range msgs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			in := &msgs[i]
			id := e.ids.Next()
			p, err := e.prepare(draft{
				id: id, body: in.Body, host: host,
				tenant: in.Tenant, campaign: in.Campaign, priority: in.Priority,
				// Every caller is trusted or holds an API key.
				trusted: true,
			}, now)
			if err != nil {
				errs[i] = err
				return
			}
			m := newQueueMessage(id, in.From, in.Recipients, p, now)
			t0 := time.Now()
			if errs[i] = e.spool.Append(m, withReceived(httpReceived(peer, host, id, now), p.body)); errs[i] == nil {
				e.metrics.SpoolCommit.UpdateDuration(t0)
				qms[i] = m
			}
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, m := range qms {
			if m != nil {
				_ = e.spool.Remove(m.ID)
			}
		}
		e.log.Error("inject: spool append", "messages", len(msgs), "err", err)
		return nil, injectError(err)
	}
	ids := make([]string, len(qms))
	for i, m := range qms {
		ids[i] = m.ID
		// The Reception records read m: write them before delivery owns it.
		e.metrics.Received("http").Inc()
		e.recordReception(m, "http", peer.String(), "")
		e.obs.enqueued(m) // before delivery can record an outcome
		if err := e.delivery.Enqueue(m); err != nil {
			e.log.Error("enqueue", "id", m.ID, "err", err)
		}
	}
	return ids, nil
}
