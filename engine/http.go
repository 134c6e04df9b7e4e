package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"gannet/engine/config"
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
				k := e.cfg.APIKey(bearer)
				if k == nil {
					return "", false
				}
				return k.Tenant, true
			},
			Injector: e,
			Metrics:  e.metrics,
			Admin:    e.adminHandler(),
			Now:      e.now,
			Hostname: e.hostname(),
			Logger:   e.log,
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
// they queued for delivery.
func (e *Engine) Inject(ctx context.Context, msgs []httpapi.Message) ([]string, error) {
	if err := e.admit(); err != nil {
		return nil, fmt.Errorf("%w: %v", httpapi.ErrQueueFull, err)
	}
	if max := e.cfg.Queue.MaxQueueDepth; max > 0 && e.delivery.Messages()+len(msgs) > max {
		return nil, httpapi.ErrQueueFull
	}
	var peer netip.Addr
	if c, ok := httpapi.CallerFrom(ctx); ok {
		peer = c.Addr
	}
	now := e.now()
	qms := make([]*queue.Message, len(msgs))
	bodies := make([][]byte, len(msgs))
	for i := range msgs {
		in := &msgs[i]
		meta := e.readMeta(in.Body, true)
		m := &queue.Message{
			ID:       e.ids.Next(),
			From:     in.From,
			Tenant:   in.Tenant,
			Campaign: in.Campaign,
			Priority: in.Priority,
			Created:  now,
		}
		if m.Tenant == "" {
			m.Tenant = meta.tenant
		}
		if m.Campaign == "" {
			m.Campaign = meta.campaign
		}
		if meta.priority > m.Priority {
			m.Priority = meta.priority
		}
		m.Recipients = make([]queue.Recipient, len(in.Recipients))
		for j, r := range in.Recipients {
			m.Recipients[j] = queue.Recipient{Addr: r}
		}
		recv := httpReceived(peer, e.hostname(), m.ID, now)
		body := make([]byte, 0, len(recv)+len(meta.body))
		bodies[i] = append(append(body, recv...), meta.body...)
		qms[i] = m
	}

	// Append in parallel so the messages share fsyncs.
	errs := make([]error, len(qms))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelAppends)
	for i := range qms {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			errs[i] = e.spool.Append(qms[i], bodies[i])
			<-sem
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, m := range qms {
			if errs[i] == nil {
				_ = e.spool.Remove(m.ID)
			}
		}
		e.log.Error("inject: spool append", "err", err)
		if e.spool.Healthy() != nil {
			return nil, fmt.Errorf("%w: %v", httpapi.ErrQueueFull, err)
		}
		return nil, err
	}
	ids := make([]string, len(qms))
	for i, m := range qms {
		ids[i] = m.ID
		if err := e.delivery.Enqueue(m); err != nil {
			e.log.Error("enqueue", "id", m.ID, "err", err)
		}
		e.metrics.Received("http").Inc()
		e.recordReception(m, "http", peer.String(), "")
	}
	return ids, nil
}

// servesAdmin reports whether any HTTP listener serves the admin API.
func servesAdmin(c *config.Config) bool {
	for _, l := range c.HTTPListeners {
		if l.Serves(config.ServiceAdmin) {
			return true
		}
	}
	return false
}
