package sink

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Sink. The zero value listens on a free loopback port
// with PIPELINING, no TLS, no CHUNKING and no faults.
type Config struct {
	// Listen holds the addresses to listen on; empty (and no Personas)
	// means "127.0.0.1:0".
	Listen []string
	// Hostname is used in the greeting and the EHLO reply.
	Hostname string
	// TLS, when set, makes the sink offer STARTTLS (RFC 3207).
	TLS *tls.Config
	// NoPipelining stops advertising PIPELINING and flushes every reply.
	NoPipelining bool
	// Chunking advertises CHUNKING and accepts BDAT (RFC 3030).
	Chunking bool
	// MaxMessageSize is advertised in SIZE (RFC 1870) and enforced on the
	// received bytes with "552 5.3.4"; 0 means 64 MiB.
	MaxMessageSize int64
	// MaxRecipients per transaction, past which RCPT gets "452 4.5.3"; 0 means 1000.
	MaxRecipients int
	// MaxConns refuses connections past this many open ones with "421 4.7.0"; 0 = no limit.
	MaxConns int
	// DumpDir, when set, receives NNNNNNNNN.eml (the body, byte-exact) and
	// NNNNNNNNN.json (the envelope) for every accepted message.
	DumpDir string
	// IDsFile, when set, gets one line per accepted message: the X-Blast-Id
	// header value, else the Message-ID value, else "-".
	IDsFile string
	// Keep retains accepted messages in memory for Messages.
	Keep bool
	// OnMessage, when set, is called with every accepted message before the
	// sink answers 250. It runs on the connection's goroutine.
	OnMessage func(*Message)
	// Faults is the initial fault injection; see SetFaults.
	Faults Faults
	// Seed seeds the per-connection random sources; 0 picks one from the clock.
	Seed uint64
	// Now is the clock (throttle windows, timestamps); nil means time.Now.
	Now func() time.Time
	// Personas make listen addresses play providers (see Persona); an
	// address of a persona not in Listen is added to it.
	Personas []Persona
	// IdleTimeout closes a connection that sends nothing for this long
	// ("421 4.4.2"); 0 means 5 minutes.
	IdleTimeout time.Duration
}

// Message is one accepted message.
type Message struct {
	Seq      uint64    `json:"seq"`
	From     string    `json:"from"`
	Rcpts    []string  `json:"rcpts"`
	Helo     string    `json:"helo"`
	Peer     string    `json:"peer"`
	TLS      bool      `json:"tls"`
	Chunked  bool      `json:"chunked"` // received with BDAT
	Size     int       `json:"size"`
	Received time.Time `json:"received"`
	Data     []byte    `json:"-"` // the body after dot-unstuffing, byte-exact
}

// Sink is a running SMTP receiver. Its methods are safe for concurrent use.
type Sink struct {
	cfg       Config
	now       func() time.Time
	start     time.Time
	keepBody  bool
	lns       []net.Listener
	personas  []*personaState // by listener; nil where no persona plays
	faults    atomic.Pointer[stageFaults]
	c         counters
	seq       atomic.Uint64
	connSeq   atomic.Uint64
	ehlo      [2][]byte // EHLO reply without / with TLS active
	greeting  []byte
	done      chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
	keptMu    sync.Mutex
	kept      []Message
	idsMu     sync.Mutex
	ids       *os.File
	thrMu     sync.Mutex
	thrStart  time.Time
	thrCount  int
	closeOnce sync.Once
}

// Start listens on every configured address and serves until Close.
func Start(cfg Config) (*Sink, error) {
	if len(cfg.Listen) == 0 && len(cfg.Personas) == 0 {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "sink.example.test"
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 64 << 20
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 1000
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	s := &Sink{
		cfg:   cfg,
		now:   cfg.Now,
		done:  make(chan struct{}),
		conns: map[net.Conn]struct{}{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.start = s.now()
	s.keepBody = cfg.DumpDir != "" || cfg.IDsFile != "" || cfg.Keep || cfg.OnMessage != nil
	s.faults.Store(compileFaults(cfg.Faults))
	s.greeting = []byte("220 " + cfg.Hostname + " ESMTP smtpsink\r\n")
	s.ehlo[0] = s.ehloReply(false)
	s.ehlo[1] = s.ehloReply(true)
	if cfg.DumpDir != "" {
		if err := os.MkdirAll(cfg.DumpDir, 0o755); err != nil {
			return nil, fmt.Errorf("sink: dump dir: %w", err)
		}
	}
	if cfg.IDsFile != "" {
		f, err := os.OpenFile(cfg.IDsFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("sink: ids file: %w", err)
		}
		s.ids = f
	}
	byAddr := map[string]*personaState{}
	for _, p := range cfg.Personas {
		if err := p.check(); err != nil {
			return nil, fmt.Errorf("sink: persona: %w", err)
		}
		if byAddr[p.Listen] != nil {
			return nil, fmt.Errorf("sink: two personas on %s", p.Listen)
		}
		byAddr[p.Listen] = newPersonaState(p, s.start)
		if !slices.Contains(cfg.Listen, p.Listen) {
			cfg.Listen = append(cfg.Listen, p.Listen)
		}
	}
	s.cfg.Listen = cfg.Listen
	for _, addr := range cfg.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sink: listen %s: %w", addr, err)
		}
		s.lns = append(s.lns, ln)
		s.personas = append(s.personas, byAddr[addr])
	}
	for i, ln := range s.lns {
		s.wg.Add(1)
		go s.acceptLoop(ln, s.personas[i])
	}
	return s, nil
}

// ehloReply builds the EHLO reply once (RFC 5321 §4.1.1.1): STARTTLS is
// advertised only before TLS is active (RFC 3207 §4.2).
func (s *Sink) ehloReply(tlsActive bool) []byte {
	ext := []string{s.cfg.Hostname}
	if !s.cfg.NoPipelining {
		ext = append(ext, "PIPELINING")
	}
	ext = append(ext, "8BITMIME", "SMTPUTF8", "SIZE "+strconv.FormatInt(s.cfg.MaxMessageSize, 10), "ENHANCEDSTATUSCODES")
	if s.cfg.TLS != nil && !tlsActive {
		ext = append(ext, "STARTTLS")
	}
	ext = append(ext, "AUTH PLAIN LOGIN")
	if s.cfg.Chunking {
		ext = append(ext, "CHUNKING")
	}
	var b []byte
	for i, e := range ext {
		sep := "-"
		if i == len(ext)-1 {
			sep = " "
		}
		b = append(b, "250"+sep+e+"\r\n"...)
	}
	return b
}

func (s *Sink) acceptLoop(ln net.Listener, ps *personaState) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (EMFILE and the like): back off briefly.
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, ps)
	}
}

func (s *Sink) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Sink) forget(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// Addr returns the first listening address ("127.0.0.1:34567").
func (s *Sink) Addr() string {
	return s.lns[0].Addr().String()
}

// Addrs returns every listening address, in Config.Listen order.
func (s *Sink) Addrs() []string {
	out := make([]string, len(s.lns))
	for i, ln := range s.lns {
		out[i] = ln.Addr().String()
	}
	return out
}

// Stats returns a snapshot of the counters.
func (s *Sink) Stats() Stats {
	st := s.c.snapshot(s.now().Sub(s.start))
	for _, ps := range s.personas {
		if ps != nil {
			st.Personas = append(st.Personas, ps.stats())
		}
	}
	return st
}

// TakeMaxConcurrent returns the most connections open at once since the
// start or the last call, and starts a new period from those open now, so
// that a test can check a limit phase by phase (Stats' MaxConcurrentConns
// keeps the peak since the start).
func (s *Sink) TakeMaxConcurrent() int64 {
	return s.c.periodMax.Swap(s.c.current.Load())
}

// SetFaults replaces the fault injection; sessions see it at their next stage.
// The throttle window keeps running.
func (s *Sink) SetFaults(f Faults) {
	s.faults.Store(compileFaults(f))
}

// Messages returns the messages accepted so far when Config.Keep is set.
func (s *Sink) Messages() []Message {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	return append([]Message(nil), s.kept...)
}

// Handler serves the statistics as JSON at GET /stats.
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Stats())
	})
	return mux
}

// Close stops listening, closes every connection and waits for the sessions
// to end. It is safe to call more than once.
func (s *Sink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		for _, ln := range s.lns {
			ln.Close()
		}
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		if s.ids != nil {
			if e := s.ids.Sync(); e != nil {
				err = e
			}
			if e := s.ids.Close(); e != nil && err == nil {
				err = e
			}
		}
	})
	return err
}

// throttled reports whether the throttle refuses one more message now, and
// counts the message when it does not. The window is fixed: it starts at the
// first message after the previous window ended.
func (s *Sink) throttled(t Throttle) bool {
	if t.Limit <= 0 {
		return false
	}
	now := s.now()
	s.thrMu.Lock()
	defer s.thrMu.Unlock()
	if s.thrStart.IsZero() || now.Sub(s.thrStart) >= t.Per {
		s.thrStart = now
		s.thrCount = 0
	}
	if s.thrCount >= t.Limit {
		return true
	}
	s.thrCount++
	return false
}

// sleep waits d or until the sink closes, whichever is first.
func (s *Sink) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}
