package blast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxErrorSamples is how many distinct error texts a result keeps.
const maxErrorSamples = 10

// Result is the summary of a run.
type Result struct {
	RunID             string         `json:"run_id"`
	Mode              string         `json:"mode"` // smtp, http-message, http-inject
	Target            string         `json:"target"`
	Connections       int            `json:"connections"`
	Sent              uint64         `json:"sent"`   // messages attempted (= acked + failed)
	Acked             uint64         `json:"acked"`  // accepted by the server
	Failed            uint64         `json:"failed"` // refused, or lost to a connection error
	RcptsAccepted     uint64         `json:"rcpts_accepted"`
	RcptsRejected     uint64         `json:"rcpts_rejected"`
	Connects          uint64         `json:"connects"`
	ConnErrors        uint64         `json:"conn_errors"`
	Bytes             uint64         `json:"bytes"` // message bytes of acked messages
	ElapsedSeconds    float64        `json:"elapsed_seconds"`
	MessagesPerSecond float64        `json:"messages_per_second"` // acked per second
	Latency           LatencySummary `json:"latency_ms"`
	// DotLatency is the time from the end of the data (the "." line
	// flushed) to the final reply, of the messages whose data was sent
	// (SMTP only): what a client waits for the server to make the
	// message durable (RFC 5321 §4.1.1.4, §4.5.3.2.6).
	DotLatency        LatencySummary `json:"dot_latency_ms"`
	Replies           map[int]uint64 `json:"replies"` // SMTP reply or HTTP status codes
	CPUSeconds        float64        `json:"cpu_seconds"`
	CPUSecondsPer1000 float64        `json:"cpu_seconds_per_1000"`
	Errors            []string       `json:"errors,omitempty"`
}

// WriteText writes the human summary.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "smtpblast run %s: %s -> %s, %d connections\n", r.RunID, r.Mode, r.Target, r.Connections)
	fmt.Fprintf(w, "  messages: sent %d, acked %d, failed %d; recipients accepted %d, rejected %d\n",
		r.Sent, r.Acked, r.Failed, r.RcptsAccepted, r.RcptsRejected)
	fmt.Fprintf(w, "  elapsed %.2fs, %.0f messages/s, %.1f MB/s; connects %d, connection errors %d\n",
		r.ElapsedSeconds, r.MessagesPerSecond, float64(r.Bytes)/1e6/max(r.ElapsedSeconds, 1e-9), r.Connects, r.ConnErrors)
	l := r.Latency
	fmt.Fprintf(w, "  latency ms: p50 %.2f, p90 %.2f, p99 %.2f, max %.2f, mean %.2f\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	if d := r.DotLatency; d.Count > 0 {
		fmt.Fprintf(w, "  end of data to reply ms: p50 %.2f, p90 %.2f, p99 %.2f, max %.2f, mean %.2f\n", d.P50, d.P90, d.P99, d.Max, d.Mean)
	}
	fmt.Fprintf(w, "  replies:")
	for code := range 600 {
		if n := r.Replies[code]; n > 0 {
			fmt.Fprintf(w, " %d:%d", code, n)
		}
	}
	fmt.Fprintf(w, "\n  cpu %.2fs (%.3fs per 1000 messages)\n", r.CPUSeconds, r.CPUSecondsPer1000)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

// run is the shared state of one Run.
type run struct {
	cfg      *Config
	gen      *generator
	start    time.Time
	next     atomic.Uint64
	sent     atomic.Uint64
	acked    atomic.Uint64
	failed   atomic.Uint64
	connOK   atomic.Bool
	idsMu    sync.Mutex
	idsErr   error
	errMu    sync.Mutex
	errs     []string
	stopOnce sync.Once
	stop     context.CancelFunc
	fatal    error
}

// workerStats are a worker's own counters, merged at the end.
type workerStats struct {
	hist       histogram
	dot        histogram // end of data to the final reply
	codes      [600]uint64
	rcptOK     uint64
	rcptFail   uint64
	connects   uint64
	connErrors uint64
	bytes      uint64
}

// Run sends messages as configured and returns the summary. It returns an
// error for a bad configuration, when the server cannot be reached at all, or
// when writing the ids fails.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	r := &run{cfg: &cfg, gen: newGenerator(&cfg), stop: cancel}
	cpu0 := cpuSeconds()
	r.start = time.Now()

	var progressDone chan struct{}
	if cfg.Progress != nil {
		progressDone = make(chan struct{})
		go r.progress(ctx, progressDone)
	}
	stats := make([]workerStats, cfg.Connections)
	var wg sync.WaitGroup
	for i := range cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
			if cfg.HTTPURL != "" {
				r.httpWorker(ctx, &stats[i], rng)
			} else {
				r.smtpWorker(ctx, &stats[i], rng)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	cancel()
	if progressDone != nil {
		<-progressDone
	}
	if r.fatal != nil {
		return nil, r.fatal
	}

	res := &Result{
		RunID:          cfg.RunID,
		Mode:           "smtp",
		Target:         cfg.Server,
		Connections:    cfg.Connections,
		Sent:           r.sent.Load(),
		Acked:          r.acked.Load(),
		Failed:         r.failed.Load(),
		ElapsedSeconds: elapsed.Seconds(),
		Replies:        map[int]uint64{},
		Errors:         r.errs,
	}
	if cfg.HTTPURL != "" {
		res.Mode, res.Target = "http-"+cfg.HTTPMode, cfg.HTTPURL
	}
	var h, dot histogram
	for i := range stats {
		st := &stats[i]
		h.merge(&st.hist)
		dot.merge(&st.dot)
		for code, n := range st.codes {
			if n > 0 {
				res.Replies[code] += n
			}
		}
		res.RcptsAccepted += st.rcptOK
		res.RcptsRejected += st.rcptFail
		res.Connects += st.connects
		res.ConnErrors += st.connErrors
		res.Bytes += st.bytes
	}
	res.Latency = h.summary()
	res.DotLatency = dot.summary()
	res.MessagesPerSecond = float64(res.Acked) / max(elapsed.Seconds(), 1e-9)
	res.CPUSeconds = cpuSeconds() - cpu0
	if res.Sent > 0 {
		res.CPUSecondsPer1000 = res.CPUSeconds * 1000 / float64(res.Sent)
	}
	return res, r.idsErr
}

// claim returns the next message sequence number, waiting for its slot when
// a rate is set; ok is false when the run is over.
func (r *run) claim(ctx context.Context) (uint64, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	seq := r.next.Add(1)
	if r.cfg.Messages > 0 && seq > uint64(r.cfg.Messages) {
		return 0, false
	}
	if r.cfg.Rate > 0 {
		at := r.start.Add(time.Duration(float64(seq-1) / r.cfg.Rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return 0, false
			}
		}
	}
	r.sent.Add(1)
	return seq, true
}

// done records the outcome of one claimed message.
func (r *run) done(st *workerStats, m *message, acked bool, queueID string) {
	if !acked {
		r.failed.Add(1)
		return
	}
	r.acked.Add(1)
	st.bytes += uint64(len(m.header) + len(m.body.plain))
	if r.cfg.IDs != nil {
		if queueID == "" {
			queueID = "-"
		}
		r.idsMu.Lock()
		if _, err := io.WriteString(r.cfg.IDs, queueID+"\t"+m.blastID+"\n"); err != nil && r.idsErr == nil {
			r.idsErr = fmt.Errorf("ids: %w", err)
		}
		r.idsMu.Unlock()
	}
}

func (r *run) noteError(err error) {
	msg := err.Error()
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if len(r.errs) >= maxErrorSamples {
		return
	}
	for _, e := range r.errs {
		if e == msg {
			return
		}
	}
	r.errs = append(r.errs, msg)
}

// abort ends the run with a fatal error.
func (r *run) abort(err error) {
	r.stopOnce.Do(func() {
		r.fatal = err
		r.stop()
	})
}

func (r *run) smtpWorker(ctx context.Context, st *workerStats, rng *rand.Rand) {
	var c *client
	defer func() {
		if c != nil {
			c.quit()
		}
	}()
	perConn := 0
	var m message
	for {
		seq, ok := r.claim(ctx)
		if !ok {
			return
		}
		now := time.Now()
		r.gen.next(&m, seq, rng, now)
		if c == nil {
			var err error
			c, err = dial(ctx, r.cfg, &st.codes)
			if err != nil {
				st.connErrors++
				r.noteError(err)
				r.done(st, &m, false, "")
				if !r.connOK.Load() {
					var re *replyError
					if !errors.As(err, &re) {
						r.abort(fmt.Errorf("blast: cannot reach %s: %w", r.cfg.Server, err))
						return
					}
				}
				// Back off briefly so that a refusing server is not hammered.
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			r.connOK.Store(true)
			st.connects++
			perConn = 0
		}
		t0 := time.Now()
		res := c.send(r.cfg.From, &m)
		st.rcptOK += uint64(res.rcptOK)
		st.rcptFail += uint64(res.rcptFail)
		if res.err != nil {
			st.connErrors++
			r.noteError(res.err)
		} else {
			st.hist.record(time.Since(t0))
		}
		if res.dot > 0 {
			st.dot.record(res.dot)
		}
		id := ""
		if res.acked && r.cfg.IDs != nil {
			id = queueID(res.text)
		}
		r.done(st, &m, res.acked, id)
		perConn++
		if res.broken {
			c.conn.Close()
			c = nil
			continue
		}
		if r.cfg.PerConn > 0 && perConn >= r.cfg.PerConn {
			c.quit()
			c = nil
		}
	}
}

// progress redraws one status line at most every ProgressInterval, or with
// ProgressLines writes one whole line each ProgressInterval and a last one at
// the end.
func (r *run) progress(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	prefix, suffix := "\r", "   "
	if r.cfg.ProgressLines {
		prefix, suffix = "smtpblast: ", "\n"
	}
	line := func() {
		el := time.Since(r.start).Seconds()
		acked := r.acked.Load()
		fmt.Fprintf(r.cfg.Progress, "%s%7.1fs  acked %d  failed %d  %.0f msg/s%s", prefix, el, acked, r.failed.Load(), float64(acked)/max(el, 1e-9), suffix)
	}
	for {
		select {
		case <-t.C:
			line()
		case <-ctx.Done():
			line()
			if !r.cfg.ProgressLines {
				fmt.Fprintln(r.cfg.Progress)
			}
			return
		}
	}
}

// cpuSeconds returns the user plus system CPU time of this process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
