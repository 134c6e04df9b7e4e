package engine

import (
	"errors"
	"time"

	"gannet/queue"
)

// Spool maintenance: a background task that keeps the spool small and says
// when it stops or resumes taking mail.
//
//   - Every spoolCompactEvery it compacts sparse segments (less than half of
//     their bytes still live), so that a few long-deferred messages do not
//     pin whole 64 MiB files. Compaction does nothing while the disk is
//     below the spool's free-space floor.
//   - At the same pace it removes the dead letters older than [queue]
//     dead_letter_after (queue/dead.go).
//   - Every spoolHealthEvery it asks Spool.Healthy and logs each change:
//     "spool refusing new mail" (new mail then gets 452 4.3.1 from admit)
//     and "spool accepting mail again". Healthy re-reads the free space
//     and lets a probe through after a failed commit, so acceptance resumes
//     by itself once the disk has room; this task only reports it.
//
// It ends when the spool begins to close (Spool.Done), so Engine.Stop needs
// no extra step.
//
// Besides, spoolCorrupt hears of every message the spool takes out because
// it is corrupt (queue.Options.OnCorrupt: an index entry the startup scan
// cannot decode, a body record delivery cannot read back): it logs it and
// counts it in gannet_spool_corrupt_total{kind}. The message stays in the
// spool's quarantine, where the admin API's inspect shows it.
const (
	spoolCompactEvery = time.Minute
	spoolHealthEvery  = time.Second
	spoolCompactRatio = 0.5
)

// startSpoolMaint starts the maintenance goroutine (from Start).
func (e *Engine) startSpoolMaint() {
	go e.spoolMaint(e.spool, spoolHealthEvery, spoolCompactEvery)
}

// spoolCorrupt logs and counts a message the spool quarantined (or, with
// c.Err set, could not quarantine and skips until the next start). It runs
// on the goroutine of the spool's Scan or Quarantine.
func (e *Engine) spoolCorrupt(c queue.Corruption) {
	e.metrics.SpoolCorrupt(c.Kind.String()).Inc()
	attrs := []any{"part", "spool", "id", c.ID, "kind", c.Kind.String(), "reason", c.Reason, "size", c.Size}
	if m := c.Message; m != nil {
		attrs = append(attrs, "sender", m.From, "recipients", len(m.Recipients), "tenant", m.Tenant)
	}
	if c.Err != nil {
		e.log.Error("corrupt message skipped; the spool could not quarantine it", append(attrs, "err", c.Err)...)
		return
	}
	e.log.Error("corrupt message quarantined; gannet queue inspect shows it", attrs...)
}

// spoolMaint runs until the spool closes.
func (e *Engine) spoolMaint(sp *queue.Spool, healthEvery, compactEvery time.Duration) {
	health := time.NewTicker(healthEvery)
	defer health.Stop()
	compact := time.NewTicker(compactEvery)
	defer compact.Stop()
	var refusing error
	for {
		select {
		case <-sp.Done():
			return
		case <-health.C:
			err := sp.Healthy()
			if errors.Is(err, queue.ErrClosed) {
				return
			}
			switch {
			case err != nil && refusing == nil:
				e.log.Warn("spool refusing new mail", "err", err, "reply", "452 4.3.1")
			case err == nil && refusing != nil:
				e.log.Info("spool accepting mail again", "after", refusing.Error())
			}
			refusing = err
		case <-compact.C:
			e.sweepSuppression()
			if keep := e.conf().Queue.DeadLetterAfter.Duration; keep > 0 {
				if n, err := sp.ExpireDead(e.now().Add(-keep)); err != nil && !errors.Is(err, queue.ErrClosed) {
					e.log.Error("spool dead letters", "err", err)
				} else if n > 0 {
					e.log.Info("dead letters removed", "count", n, "older_than", keep)
				}
			}
			t0 := time.Now()
			st, err := sp.Compact(spoolCompactRatio)
			switch {
			case errors.Is(err, queue.ErrClosed):
				return
			case errors.Is(err, queue.ErrNoSpace):
				// Below the free-space floor: nothing to do until deliveries
				// free room; the health log already says why.
			case err != nil:
				e.log.Error("spool compaction", "err", err)
			case st.Moved > 0 || st.Segments > 0:
				e.log.Info("spool compacted", "segments", st.Segments, "moved", st.Moved,
					"skipped", st.Skipped, "freed_bytes", st.Freed, "took", time.Since(t0).Round(time.Millisecond))
			}
		}
	}
}
