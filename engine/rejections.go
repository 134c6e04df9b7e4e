package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gannet/engine/config"
	"gannet/engine/inbound"
	"gannet/engine/logrec"
	"gannet/smtpwire"
)

// rejectionLimiter is the server-wide cap on Rejection records ([log]
// rejection_rate): a token bucket holding at most one period's worth, so
// that a burst of bad clients writes at most that many records at once
// and then the rate. Whatever it refuses is counted, not written.
type rejectionLimiter struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// allow takes a token at now under rate (count per period).
func (l *rejectionLimiter) allow(now time.Time, count int64, per time.Duration) bool {
	if count <= 0 || per <= 0 {
		return true // no rate: unlimited
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	burst := float64(count)
	if l.last.IsZero() {
		l.tokens = burst
	} else if d := now.Sub(l.last); d > 0 {
		l.tokens = min(burst, l.tokens+d.Seconds()*float64(count)/per.Seconds())
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// rejection is inbound.Options.OnRejection: it writes a Rejection record
// for a 4xx/5xx answered to an SMTP client, within [log]
// rejections_per_connection and rejection_rate. It runs on an event loop:
// the record is encoded and queued, never waited for.
func (e *Engine) rejection(r *inbound.Rejection) {
	lc := &e.conf().Log
	if r.Seq > lc.RejectionsPerConnection {
		e.metrics.RejectionsDroppedPerConn.Inc()
		return
	}
	now := e.now()
	if !e.rejects.allow(now, lc.RejectionRate.Count, lc.RejectionRate.Per) {
		e.metrics.RejectionsDroppedRate.Inc()
		return
	}
	rec := logrec.Record{
		Type:        logrec.Rejection,
		Listener:    r.Listener,
		Command:     r.Command,
		Tenant:      r.Tenant,
		PeerAddress: logrec.PeerAddress{Name: r.Helo, Addr: r.Peer.Addr().Unmap().String()},
		Timestamp:   now,
	}
	if rep, _, err := smtpwire.ParseReply(r.Reply); err == nil {
		rec.Response = logrec.Response{Code: rep.Code, EnhancedCode: rep.Enhanced, Content: strings.Join(rep.Lines, "\n")}
	} else {
		rec.Response.Content = strings.TrimRight(string(r.Reply), "\r\n")
	}
	e.records.Write(&rec)
}

// applyLogLevel sets the operational log's level from [log] level.
func (e *Engine) applyLogLevel(cfg *config.Config) {
	if e.logLevel == nil {
		return
	}
	if l, err := ParseLogLevel(cfg.Log.Level); err == nil {
		e.logLevel.Set(l)
	}
}

// ParseLogLevel reads a [log] level: "debug", "info", "warn" or "error"
// ("" is info).
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q: want debug, info, warn or error", s)
}

// LogLevel returns the operational log's level now ("" when the engine
// was given no LevelVar).
func (e *Engine) LogLevel() string {
	if e.logLevel == nil {
		return ""
	}
	return levelName(e.logLevel.Level())
}

// SetLogLevel changes the operational log's level until the next reload
// (which applies [log] level again).
func (e *Engine) SetLogLevel(s string) (string, error) {
	l, err := ParseLogLevel(s)
	if err != nil {
		return "", err
	}
	if e.logLevel == nil {
		return "", errors.New("the log level of this process cannot be changed")
	}
	old := e.logLevel.Level()
	e.logLevel.Set(l)
	e.log.Log(context.Background(), max(l, slog.LevelInfo), "log level changed", "from", levelName(old), "to", levelName(l))
	return levelName(l), nil
}

func levelName(l slog.Level) string {
	switch l {
	case slog.LevelDebug:
		return "debug"
	case slog.LevelInfo:
		return "info"
	case slog.LevelWarn:
		return "warn"
	case slog.LevelError:
		return "error"
	}
	return strings.ToLower(l.String())
}

// httpRefusal is httpapi.Options.OnRefusal: a refused inject request is a
// Rejection record too (listener "http", command "POST /api/inject/v1",
// the HTTP status as the response code), within [log] rejection_rate.
func (e *Engine) httpRefusal(peer netip.Addr, method, path string, status int, msg, tenant string) {
	now := e.now()
	rate := e.conf().Log.RejectionRate
	if !e.rejects.allow(now, rate.Count, rate.Per) {
		e.metrics.RejectionsDroppedRate.Inc()
		return
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	rec := logrec.Record{
		Type:      logrec.Rejection,
		Listener:  "http",
		Command:   method + " " + path,
		Tenant:    tenant,
		Response:  logrec.Response{Code: status, Content: msg},
		Timestamp: now,
	}
	if peer.IsValid() {
		rec.PeerAddress.Addr = peer.String()
	}
	e.records.Write(&rec)
}
