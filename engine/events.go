package engine

import (
	"path/filepath"

	"gannet/engine/events"
	"gannet/engine/logrec"
)

// buildEvents opens the journal of each [[event_sink]] (engine/events),
// under the spool's events/ directory, and installs their metrics. Records
// reach them through onRecord; shipping starts with Start.
func (e *Engine) buildEvents() error {
	cfg := e.cfg
	if len(cfg.EventSinks) == 0 {
		return nil
	}
	sinks := make([]events.SinkOptions, len(cfg.EventSinks))
	for i, s := range cfg.EventSinks {
		sinks[i] = events.SinkOptions{
			Name: s.Name, Kind: s.Kind, URL: s.URL, Secret: s.Secret, Types: s.Types, Tenant: s.Tenant,
			Batch: s.Batch, MaxBatch: s.MaxBatch, MaxDelay: s.MaxDelay.Duration, MaxRetryAge: s.MaxRetryAge.Duration,
			MaxBacklog: s.MaxBacklog, Timeout: s.Timeout.Duration, Exchange: s.Exchange, RoutingKey: s.RoutingKey,
		}
	}
	sh, err := events.New(events.Options{
		Dir:    filepath.Join(cfg.Spool.Path, "events"),
		Sinks:  sinks,
		Count:  func(sink, result string, n int) { e.metrics.EventsShipped(sink, result).Add(n) },
		Logger: e.log,
		Now:    e.now,
	})
	if err != nil {
		return err
	}
	e.events = sh
	for _, name := range sh.Names() {
		e.metrics.EventBacklog(name, func() float64 { return float64(sh.Backlog(name)) })
		// Every result's series from the start, at 0, for rate() and alerts.
		for _, r := range []string{events.ResultOK, events.ResultRejected, events.ResultExpired, events.ResultDropped, events.ResultRetried} {
			e.metrics.EventsShipped(name, r)
		}
	}
	return nil
}

// onRecord is logrec.Options.OnRecord: every log record passes here, on
// the goroutine that writes it, before it is encoded. It gets its uuid
// and counts in the labelled metrics; onEncoded hands it to the event
// sinks.
func (e *Engine) onRecord(r *logrec.Record) {
	if r.UUID == "" {
		r.UUID = events.NewUUID()
	}
	e.obs.record(r)
	e.suppressBounce(r) // a hard bounce suppresses its recipient (suppression.go)
	e.recent.Record(r)  // the console's last errors and message pages
}

// onEncoded is logrec.Options.OnEncoded (with event sinks): the event
// journal takes the bytes the log writer encoded.
func (e *Engine) onEncoded(r *logrec.Record, line []byte) {
	e.events.AddEncoded(r, line)
}
