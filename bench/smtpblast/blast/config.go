package blast

import (
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Weighted is a value with a relative weight, for -size-dist and -domains.
type Weighted[T any] struct {
	Value  T
	Weight int
}

// Config configures a run. Zero values take the defaults noted.
type Config struct {
	Server      string        // host:port of the SMTP server
	Connections int           // concurrent connections (default 1)
	Messages    int           // total messages; 0: until Duration
	Duration    time.Duration // run at most this long (default 10 minutes)
	PerConn     int           // messages per connection, then QUIT and reconnect; 0: no limit
	Sizes       []Weighted[int]
	Rcpts       int // recipients per message (default 1)
	Domains     []Weighted[string]
	From        string // envelope sender and From: (default blast@example.test)
	Pipelining  bool   // pipeline MAIL/RCPT/DATA when the server offers PIPELINING
	StartTLS    bool   // require STARTTLS
	Insecure    bool   // do not verify the server certificate
	// RootCAs verifies the server certificate (its name or IP address is
	// the host of Server); nil: the system roots.
	RootCAs  *x509.CertPool
	AuthUser string // AUTH PLAIN when set
	AuthPass string
	Rate     float64       // messages per second across all connections; 0: unlimited
	EHLO     string        // EHLO name (default blast.example.test)
	Timeout  time.Duration // per command or HTTP request (default 30 s)
	// IDs receives "<queue id>\t<X-Blast-Id>\n" for every acknowledged message.
	IDs io.Writer
	// HTTPURL, when set, injects over HTTP instead of SMTP: a base URL
	// (http://127.0.0.1:8000) to which the mode's path is added, or a full URL.
	HTTPURL  string
	HTTPMode string // "message" (POST /v1/message) or "inject" (POST /api/inject/v1)
	RunID    string // X-Blast-Id prefix (default random)
	// Headers are more header fields of every message, "Name: value"
	// (e.g. "X-Campaign: spring" to take a policy's bulk-mail path).
	Headers []string
	Seed    uint64 // for recipient domains (default from the clock)
	// Progress, when set, gets a live "\r"-redrawn progress line every
	// ProgressInterval (default 250 ms), for a terminal. With ProgressLines
	// it gets instead one whole "\n"-terminated line every ProgressInterval
	// (default 5 s), for a file, a pipe or a CI log.
	Progress         io.Writer
	ProgressInterval time.Duration
	ProgressLines    bool
}

// ParseSizeDist parses "2k:70,20k:25,100k:5" (size, optionally with k or m
// suffix, and weight) or a single size "2048".
func ParseSizeDist(s string) ([]Weighted[int], error) {
	var out []Weighted[int]
	for _, part := range strings.Split(s, ",") {
		sz, w, hasW := strings.Cut(strings.TrimSpace(part), ":")
		n, err := ParseSize(sz)
		if err != nil {
			return nil, err
		}
		weight := 1
		if hasW {
			if weight, err = strconv.Atoi(w); err != nil || weight < 1 {
				return nil, fmt.Errorf("size %q: weight must be a positive integer", part)
			}
		}
		out = append(out, Weighted[int]{n, weight})
	}
	return out, nil
}

// ParseSize parses "2048", "2k", "2KB", "1m" (binary multiples).
func ParseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 1<<30/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// ParseDomains parses "a.test:3,b.test:1" (weight defaults to 1), or
// "@FILE": the same list in a file, one or more a line (commas, spaces or
// line ends between them; lines starting with # are comments).
func ParseDomains(s string) ([]Weighted[string], error) {
	path, ok := strings.CutPrefix(s, "@")
	if !ok {
		return parseDomainList(s)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("domains: %w", err)
	}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		parts = append(parts, strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' })...)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("domains: no domain in %s", path)
	}
	return parseDomainList(strings.Join(parts, ","))
}

// parseDomainList parses "a.test:3,b.test:1".
func parseDomainList(s string) ([]Weighted[string], error) {
	var out []Weighted[string]
	for _, part := range strings.Split(s, ",") {
		d, w, hasW := strings.Cut(strings.TrimSpace(part), ":")
		if d == "" || strings.ContainsAny(d, " <>@") {
			return nil, fmt.Errorf("bad domain %q", part)
		}
		weight := 1
		if hasW {
			var err error
			if weight, err = strconv.Atoi(w); err != nil || weight < 1 {
				return nil, fmt.Errorf("domain %q: weight must be a positive integer", part)
			}
		}
		out = append(out, Weighted[string]{d, weight})
	}
	return out, nil
}

// ParseRate parses "500", "500/s" or "30000/m" into messages per second.
func ParseRate(s string) (float64, error) {
	n, per, _ := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(n, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad rate %q", s)
	}
	switch per {
	case "", "s":
	case "m":
		v /= 60
	case "h":
		v /= 3600
	default:
		return 0, fmt.Errorf("bad rate %q: unit must be s, m or h", s)
	}
	return v, nil
}

func (c *Config) setDefaults() error {
	if c.HTTPURL == "" && c.Server == "" {
		return fmt.Errorf("blast: no server")
	}
	if c.HTTPURL != "" && c.HTTPMode != "message" && c.HTTPMode != "inject" {
		return fmt.Errorf("blast: http mode %q: want message or inject", c.HTTPMode)
	}
	for _, h := range c.Headers {
		name, _, ok := strings.Cut(h, ":")
		if !ok || name == "" || strings.ContainsAny(h, "\r\n") || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("blast: header %q: want \"Name: value\" on one line", h)
		}
	}
	if c.Connections <= 0 {
		c.Connections = 1
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Minute
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []Weighted[int]{{2048, 1}}
	}
	if c.Rcpts <= 0 {
		c.Rcpts = 1
	}
	if len(c.Domains) == 0 {
		c.Domains = []Weighted[string]{{"example.test", 1}}
	}
	if c.From == "" {
		c.From = "blast@example.test"
	}
	if c.EHLO == "" {
		c.EHLO = "blast.example.test"
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixNano()/1e6, 36)
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 250 * time.Millisecond
		if c.ProgressLines {
			c.ProgressInterval = 5 * time.Second
		}
	}
	return nil
}
