package events

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
	// Dir holds the journal (the spool's events/ directory): its
	// segments, a cursor per sink (NAME.cursor), and the per-sink
	// journals of an earlier version (NAME/) until they are shipped.
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
	// journal writer has not written yet (default 65536); past it a
	// record is dropped and counted: a sink never slows mail.
	Pending int
}

// Shipper sends the log records to the configured sinks: Add takes each
// record on the mail path and returns at once; a writer goroutine
// appends the records to the journal, once for all the sinks that take
// them, and each sink's goroutine ships them from its cursor.
type Shipper struct {
	opts  Options
	sinks []*sink
	j     *journal
	lines sync.Pool // *[]byte: the buffers Add encodes a record into

	// The records Add took, not yet in the journal: their lines, and
	// each one's sinks.
	mu      sync.Mutex
	pending []byte
	masks   []uint32
	closed  bool
	wake    chan struct{}

	started   bool
	writer    sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens the journal and each sink's cursor (and an earlier version's
// journals). Nothing is shipped until Start.
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
	if len(opts.Sinks) > maxSinks {
		return nil, fmt.Errorf("%d event sinks: at most %d", len(opts.Sinks), maxSinks)
	}
	s := &Shipper{opts: opts, wake: make(chan struct{}, 1)}
	s.lines.New = func() any { b := make([]byte, 0, 2048); return &b }
	seen := map[string]bool{}
	for i, so := range opts.Sinks {
		if err := so.Check(); err != nil {
			return nil, err
		}
		if seen[so.Name] {
			return nil, fmt.Errorf("event sink %s is defined twice", so.Name)
		}
		seen[so.Name] = true
		so.setDefaults()
		s.sinks = append(s.sinks, newSink(so, i, &s.opts))
	}
	j, err := openJournal(opts.Dir, s.classify)
	if err != nil {
		return nil, fmt.Errorf("event journal: %w", err)
	}
	s.j = j
	// The cursor of a sink no longer configured: it would only come back
	// at a stale position.
	cursors, _ := filepath.Glob(filepath.Join(opts.Dir, "*.cursor"))
	for _, c := range cursors {
		if !seen[strings.TrimSuffix(filepath.Base(c), ".cursor")] {
			os.Remove(c)
		}
	}
	for _, k := range s.sinks {
		k.j = j
		err := j.openCursor(filepath.Join(opts.Dir, k.opts.Name+".cursor"), k.i, true)
		if err == nil {
			err = k.openLegacy(filepath.Join(opts.Dir, k.opts.Name))
		}
		if err != nil {
			s.closeJournals()
			return nil, fmt.Errorf("event sink %s: %w", k.opts.Name, err)
		}
	}
	return s, nil
}

func (s *Shipper) closeJournals() {
	for _, k := range s.sinks {
		if lj := k.legacy.Swap(nil); lj != nil {
			lj.close()
		}
	}
	s.j.close()
}

// classify returns the sinks that take a record: bit i for the sink at
// position i.
func (s *Shipper) classify(typ, tenant []byte) uint32 {
	var m uint32
	for _, k := range s.sinks {
		if k.takes(string(typ), string(tenant)) {
			m |= 1 << k.i
		}
	}
	return m
}

// Start starts shipping.
func (s *Shipper) Start() {
	s.started = true
	s.writer.Add(1)
	go s.writeLoop()
	for _, k := range s.sinks {
		k.start()
	}
}

// Add queues r for every sink that takes it. It stamps r with a uuid
// when it has none, encodes it once, and never waits: when the writer
// fell Options.Pending records behind, the record is dropped (counted
// for each sink that takes it).
func (s *Shipper) Add(r *logrec.Record) {
	if r.UUID == "" {
		r.UUID = NewUUID()
	}
	s.add(r, nil)
}

// AddEncoded is Add for a record the log writer encoded already
// (logrec.Options.OnEncoded): line is r.AppendJSON's, with its uuid. It
// copies line.
func (s *Shipper) AddEncoded(r *logrec.Record, line []byte) {
	s.add(r, line)
}

// add queues r, encoded as json (nil: not yet).
func (s *Shipper) add(r *logrec.Record, json []byte) {
	var mask uint32
	for _, k := range s.sinks {
		if k.takes(string(r.Type), r.Tenant) {
			mask |= 1 << k.i
		}
	}
	if mask == 0 {
		return
	}
	var bp *[]byte
	if json == nil {
		bp = s.lines.Get().(*[]byte)
		*bp = r.AppendJSON((*bp)[:0])
		json = *bp
	}
	s.mu.Lock()
	if s.closed || len(s.masks) >= s.opts.Pending {
		s.mu.Unlock()
		s.countEach(mask, ResultDropped, 1)
	} else {
		s.pending = appendLine(s.pending, r, json)
		s.masks = append(s.masks, mask)
		first := len(s.masks) == 1
		s.mu.Unlock()
		if first {
			s.signal()
		}
	}
	if bp != nil && cap(*bp) <= 64<<10 {
		s.lines.Put(bp)
	}
}

func (s *Shipper) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// countEach counts n records of result for each sink of mask.
func (s *Shipper) countEach(mask uint32, result string, n int) {
	for _, k := range s.sinks {
		if mask&(1<<k.i) != 0 {
			k.count(result, n)
		}
	}
}

// take swaps the pending records for the spare buffers (emptied).
func (s *Shipper) take(spare []byte, spareMasks []uint32) ([]byte, []uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, m := s.pending, s.masks
	s.pending, s.masks = spare[:0], spareMasks[:0]
	return b, m, s.closed
}

// syncEvery is how often the writer syncs the journal with new records;
// cursorEvery how often it saves the cursors that moved; batchWindow how
// long it lets records gather after it wrote some (a busy relay: a few
// hundred writes a second, not one per record).
const (
	syncEvery   = time.Second
	cursorEvery = 100 * time.Millisecond
	batchWindow = 5 * time.Millisecond
)

// writeLoop moves the pending records into the journal, syncs it every
// syncEvery, saves the cursors and trims the backlogs to max_backlog.
func (s *Shipper) writeLoop() {
	defer s.writer.Done()
	tick := time.NewTicker(syncEvery)
	defer tick.Stop()
	save := time.NewTicker(cursorEvery)
	defer save.Stop()
	var spare []byte
	var spareMasks []uint32
	for {
		select {
		case <-s.wake:
			b, m, closed := s.take(spare, spareMasks)
			s.write(b, m)
			spare, spareMasks = b, m
			if cap(spare) > 4<<20 {
				spare, spareMasks = nil, nil
			}
			if closed {
				return
			}
			if len(m) > 0 && len(m) < s.opts.Pending/8 {
				// Let the next records gather; a writer that falls
				// behind goes on at once.
				time.Sleep(batchWindow)
			}
		case <-tick.C:
			if err := s.j.sync(); err != nil {
				s.failed(fmt.Errorf("journal sync: %w", err))
			}
		case <-save.C:
			if err := s.j.saveCursors(); err != nil {
				s.failed(fmt.Errorf("journal cursor: %w", err))
			}
		}
	}
}

func (s *Shipper) write(b []byte, masks []uint32) {
	if len(masks) == 0 {
		return
	}
	if err := s.j.append(b, masks); err != nil {
		for _, k := range s.sinks {
			n := 0
			for _, m := range masks {
				if m&(1<<k.i) != 0 {
					n++
				}
			}
			if n > 0 {
				k.count(ResultDropped, n)
				k.failed(fmt.Errorf("journal: %w (%d records dropped)", err, n))
			}
		}
		return
	}
	for _, k := range s.sinks {
		if dropped := s.j.trim(k.i, uint64(k.opts.MaxBacklog)); dropped > 0 {
			k.count(ResultDropped, int(dropped))
			k.log.Warn("event backlog full: oldest records dropped", "dropped", dropped, "max_backlog", k.opts.MaxBacklog)
		}
	}
}

// failed notes a journal error in every sink's status.
func (s *Shipper) failed(err error) {
	for _, k := range s.sinks {
		k.failed(err)
	}
}

// Close stops shipping (a batch in flight is shipped again after the next
// start), writes what Add took to the journal, syncs it and saves the
// cursors.
func (s *Shipper) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		var errs []error
		for _, k := range s.sinks {
			errs = append(errs, k.stop())
		}
		if s.started {
			s.signal()
			s.writer.Wait()
		} else {
			b, m, _ := s.take(nil, nil)
			s.write(b, m)
		}
		errs = append(errs, s.j.close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
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
			return k.backlog()
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
