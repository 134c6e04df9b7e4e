package events

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"gannet/engine/logrec"
)

// Sink kinds.
const (
	KindWebhook = "webhook"
	KindAMQP    = "amqp"
)

// Results counted by Options.Count (gannet_events_shipped_total{result}).
const (
	ResultOK       = "ok"       // the sink took the record (2xx, or the broker confirmed it)
	ResultRejected = "rejected" // the webhook refused it for good (a 4xx other than 408 and 429): dropped
	ResultExpired  = "expired"  // still failing max_retry_age after the record was written: dropped
	ResultDropped  = "dropped"  // past max_backlog (the oldest go), or not written to the journal
	ResultRetried  = "retried"  // an attempt failed and will be retried (once per record per attempt)
)

// SinkOptions is one [[event_sink]].
type SinkOptions struct {
	Name   string
	Kind   string // KindWebhook or KindAMQP
	URL    string // http(s)://… or amqp(s)://…
	Secret string // webhook signing key
	// Types are the record types the sink takes; empty: all. Tenant,
	// when set, limits it to that tenant's records.
	Types  []string
	Tenant string
	// Batch ships up to MaxBatch records at once (a JSON array for a
	// webhook), waiting up to MaxDelay for a batch to fill. Without it a
	// webhook gets one record per request, and an AMQP sink publishes
	// the records waiting (up to MaxBatch) without waiting for more.
	Batch    bool
	MaxBatch int           // default 100
	MaxDelay time.Duration // default 1s
	// MaxRetryAge: a record still not shipped this long after it was
	// written is dropped (counted as expired). Default 24h.
	MaxRetryAge time.Duration
	// MaxBacklog bounds the records waiting; past it the oldest are
	// dropped. Default 1,000,000.
	MaxBacklog int
	Timeout    time.Duration // one request or publish; default 30s
	Exchange   string        // AMQP exchange ("": the default exchange)
	RoutingKey string        // AMQP routing key template: {type}, {tenant}, {campaign}
}

// Default values of SinkOptions.
const (
	DefaultMaxBatch    = 100
	DefaultMaxDelay    = time.Second
	DefaultMaxRetryAge = 24 * time.Hour
	DefaultMaxBacklog  = 1_000_000
	DefaultTimeout     = 30 * time.Second
)

// sinkName is what a sink may be called: it names its directory.
var sinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Check reports what is wrong with o, if anything.
func (o *SinkOptions) Check() error {
	if !sinkName.MatchString(o.Name) {
		return fmt.Errorf("event sink name %q: letters, digits, '_', '.' and '-' only (it names a directory)", o.Name)
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("event sink %s: url: %v", o.Name, err)
	}
	switch o.Kind {
	case KindWebhook:
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("event sink %s: a webhook needs an http:// or https:// url", o.Name)
		}
	case KindAMQP:
		if (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			return fmt.Errorf("event sink %s: an amqp sink needs an amqp:// or amqps:// url", o.Name)
		}
	default:
		return fmt.Errorf("event sink %s: kind %q is not webhook or amqp", o.Name, o.Kind)
	}
	return nil
}

func (o *SinkOptions) setDefaults() {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if !o.Batch {
		switch o.Kind {
		case KindAMQP:
			// Each record is a message of its own anyway: publish those
			// waiting together (one wait for the confirms), without
			// waiting for more.
			o.MaxDelay = 0
		default:
			o.MaxBatch = 1
		}
	}
	if o.MaxRetryAge <= 0 {
		o.MaxRetryAge = DefaultMaxRetryAge
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
}

// Options configure a Shipper.
type Options struct {
	// Dir holds one journal directory per sink (DIR/NAME): the spool's
	// events/ directory.
	Dir   string
	Sinks []SinkOptions
	// Count is called with each outcome: n records of sink had result
	// (the Result constants). Nil: not counted.
	Count  func(sink, result string, n int)
	Logger *slog.Logger     // nil: discarded
	Now    func() time.Time // nil: time.Now
	// RetryMin and RetryMax bound the back-off between attempts of a
	// batch that failed (it doubles from RetryMin). Defaults 1s and 5m.
	RetryMin, RetryMax time.Duration
	// Pending bounds the records taken from the mail path that the
	// journal writer has not written yet, per sink (default 65536); past
	// it a record is dropped and counted: a sink never slows mail.
	Pending int
}

// Shipper sends the log records to the configured sinks: Add takes each
// record on the mail path and returns at once; per sink, a writer
// goroutine appends it to the sink's journal and a shipping goroutine
// sends it.
type Shipper struct {
	opts  Options
	sinks []*sink
	lines sync.Pool // *[]byte: the buffers Add encodes a record into
}

// New opens each sink's journal. Nothing is shipped until Start.
func New(opts Options) (*Shipper, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	if opts.Pending <= 0 {
		opts.Pending = 65536
	}
	if opts.Count == nil {
		opts.Count = func(string, string, int) {}
	}
	s := &Shipper{opts: opts}
	s.lines.New = func() any { b := make([]byte, 0, 2048); return &b }
	seen := map[string]bool{}
	for _, so := range opts.Sinks {
		if err := so.Check(); err != nil {
			s.closeJournals()
			return nil, err
		}
		if seen[so.Name] {
			s.closeJournals()
			return nil, fmt.Errorf("event sink %s is defined twice", so.Name)
		}
		seen[so.Name] = true
		so.setDefaults()
		j, err := openJournal(filepath.Join(opts.Dir, so.Name))
		if err != nil {
			s.closeJournals()
			return nil, fmt.Errorf("event sink %s: %w", so.Name, err)
		}
		s.sinks = append(s.sinks, newSink(so, j, &s.opts))
	}
	return s, nil
}

func (s *Shipper) closeJournals() {
	for _, k := range s.sinks {
		k.j.close()
	}
}

// Start starts shipping.
func (s *Shipper) Start() {
	for _, k := range s.sinks {
		k.start()
	}
}

// Add queues r for every sink that takes it. It stamps r with a uuid
// when it has none, encodes it once, and never waits: a sink whose
// writer fell Options.Pending records behind drops it (counted).
func (s *Shipper) Add(r *logrec.Record) {
	if r.UUID == "" {
		r.UUID = NewUUID()
	}
	var bp *[]byte
	for _, k := range s.sinks {
		if !k.takes(r) {
			continue
		}
		if bp == nil {
			bp = s.lines.Get().(*[]byte)
			*bp = appendLine((*bp)[:0], r)
		}
		k.enqueue(*bp)
	}
	if bp != nil {
		if cap(*bp) <= 64<<10 {
			s.lines.Put(bp)
		}
	}
}

// Close stops shipping (a batch in flight is shipped again after the next
// start), writes what Add took to the journals, syncs them and saves the
// cursors.
func (s *Shipper) Close() error {
	var errs []error
	for _, k := range s.sinks {
		errs = append(errs, k.close())
	}
	return errors.Join(errs...)
}

// Status describes each sink, in configuration order.
func (s *Shipper) Status() []SinkStatus {
	out := make([]SinkStatus, 0, len(s.sinks))
	for _, k := range s.sinks {
		out = append(out, k.status())
	}
	return out
}

// Backlog returns the records a sink has not shipped yet (gannet_event_backlog).
func (s *Shipper) Backlog(sink string) uint64 {
	for _, k := range s.sinks {
		if k.opts.Name == sink {
			return k.j.backlog()
		}
	}
	return 0
}

// Names returns the sinks' names, in configuration order.
func (s *Shipper) Names() []string {
	out := make([]string, len(s.sinks))
	for i, k := range s.sinks {
		out[i] = k.opts.Name
	}
	return out
}

// SinkStatus is one sink as `gannet events status` shows it (GET
// /api/admin/events/v1).
type SinkStatus struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	URL     string `json:"url"` // without a password
	Backlog uint64 `json:"backlog"`
	// Since the start: records shipped, refused (4xx), expired and
	// dropped (backlog).
	Shipped     uint64     `json:"shipped"`
	Rejected    uint64     `json:"rejected"`
	Expired     uint64     `json:"expired"`
	Dropped     uint64     `json:"dropped"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// redactURL hides the password of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
