package inbound

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"gannet/engine/trace"
	"gannet/smtpwire"
)

// ListenerConfig describes one SMTP listener: where it listens, what it
// advertises and which clients may relay through it.
type ListenerConfig struct {
	Name     string // the listener's name in metrics and log records
	Listen   string // "host:port"; port 0 picks a free port (see Server.Addrs)
	Hostname string // banner and EHLO name, and the "by" of the Received header

	// RelayHosts are the client networks that may relay without AUTH.
	RelayHosts []netip.Prefix

	MaxMessageSize      int64 // bytes; advertised in SIZE (RFC 1870) and enforced
	MaxRecipients       int   // per transaction; 452 4.5.3 past it
	MaxConnections      int   // open connections on this listener; 0 = no limit
	MaxConnectionsPerIP int   // open connections per client IP; 0 = no limit
	MaxBadCommands      int   // syntax/sequence errors before 421 4.4.2 and close

	BareLF smtpwire.BareLFPolicy

	// CommandTimeout bounds each command line inside a transaction (after
	// MAIL) or a SASL exchange, DataTimeout each line of a DATA or BDAT
	// body, IdleTimeout each command line outside a transaction (after the
	// greeting, between messages); the clock starts when the previous line
	// is complete, not at the last byte (smtpwire.Session.Lines). RFC 5321
	// §4.5.3.2 suggests 5 minutes for commands and 3 minutes per data block.
	// SessionTimeout, when set, bounds the whole connection. Waiting for our
	// own worker (the spool) never times out.
	CommandTimeout time.Duration
	DataTimeout    time.Duration
	IdleTimeout    time.Duration
	SessionTimeout time.Duration

	// TLSConfig enables STARTTLS (RFC 3207); nil means no STARTTLS. With
	// ImplicitTLS the connection is TLS from the first byte (RFC 8314).
	TLSConfig   *tls.Config
	ImplicitTLS bool

	// AuthMechs are the SASL mechanisms offered (RFC 4954), e.g. "PLAIN",
	// "LOGIN", "CRAM-MD5"; ignored when the server has no Authenticator.
	// AuthRequireTLS offers and accepts AUTH only under TLS.
	AuthMechs      []string
	AuthRequireTLS bool

	// Failed AUTH attempts are counted per client address (IPv6 per /64)
	// across connections, within AuthFailWindow of the first failure. From
	// AuthFailDelayAfter failures on, each AUTH answer to that address is
	// delayed by AuthFailDelay; at AuthFailBlockAfter failures the address
	// gets "421 4.7.0" at AUTH, and at connect when it is outside
	// RelayHosts, for AuthFailWindow. Zero fields take the defaults below;
	// a negative count or window turns that step off.
	AuthFailDelayAfter int
	AuthFailDelay      time.Duration
	AuthFailBlockAfter int
	AuthFailWindow     time.Duration

	// ProxyProtocol makes every connection start with a PROXY protocol
	// header, version 1 or 2 (HAProxy's proxy-protocol.txt), sent by a
	// proxy whose address is inside TrustedProxies; the client address it
	// carries is then the connection's peer for everything: RelayHosts,
	// AUTH blocking, the connection limits, Received, log records,
	// Greeter and Acceptor. A LOCAL (v2) or UNKNOWN (v1) header keeps the
	// proxy's address (a health check). A connection from elsewhere, a
	// header that is malformed or not complete within ProxyHeaderTimeout
	// is refused ("421" and closed; proxy.go) before any greeting.
	ProxyProtocol      bool
	TrustedProxies     []netip.Prefix
	ProxyHeaderTimeout time.Duration
	// Feedback: every recipient of this listener is a bounce or FBL
	// address (Options.FeedbackDomain names more, on every listener).
	Feedback bool
}

// Defaults applied by New to zero fields.
const (
	DefaultMaxMessageSize = 20 << 20
	DefaultMaxRecipients  = 1000
	DefaultMaxBadCommands = 10
	DefaultCommandTimeout = 5 * time.Minute
	DefaultDataTimeout    = 3 * time.Minute
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultWorkers        = 512

	DefaultAuthFailDelayAfter = 3
	DefaultAuthFailDelay      = 2 * time.Second
	DefaultAuthFailBlockAfter = 10
	DefaultAuthFailWindow     = 5 * time.Minute

	// DefaultProxyHeaderTimeout: proxy-protocol.txt §2 asks for at least
	// 3 seconds, to cover a TCP retransmit.
	DefaultProxyHeaderTimeout = 5 * time.Second
)

// Options are the server-wide settings and collaborators.
type Options struct {
	// Workers bounds the messages (and AUTH checks) handled at once off the
	// event loops; past it, a finished message gets 451 4.3.2. Each worker
	// blocks in Acceptor.Accept until the spool has synced, so this should be
	// large enough to keep the spool's group commit busy.
	Workers int
	// EventLoops is the number of gnet event loops per listener (0: one per CPU).
	EventLoops int
	Logger     *slog.Logger
	Now        func() time.Time
	Metrics    Metrics
	// Authenticator checks AUTH credentials; nil: AUTH is never offered.
	Authenticator Authenticator
	// Greeter, when set, runs after each EHLO/HELO and again after a
	// successful AUTH (a policy script's smtp_server_greeting). Nil: none.
	Greeter Greeter
	// OnRejection, when set, is called on the event loop with every 4xx
	// or 5xx reply sent to a client; it must be quick, must not block and
	// must not keep the Rejection. Nil: refusals are only counted.
	OnRejection func(*Rejection)
	// FeedbackDomain, when set, reports whether mail to a recipient
	// domain is feedback (bounces, complaints) on every listener: such
	// recipients are taken from any client, without relay permission, and
	// the message is handed to the Acceptor with Incoming.Feedback set. It
	// runs on the event loop: it must be quick and must not block.
	FeedbackDomain func(domain string) bool
	// Trace receives the conversations of the sessions its subscribers
	// watch (engine/trace). Nil: sessions are never traced.
	Trace *trace.Hub
}

// Metrics receives the listener's counters. Calls come from event loops and
// workers concurrently; implementations must be cheap and safe for that.
type Metrics interface {
	ConnOpened(listener string)         // gannet_connections{direction="in"} +1
	ConnClosed(listener string)         // gannet_connections{direction="in"} -1
	Received(listener string, size int) // gannet_messages_received_total{listener}
	ErrorIn(listener string, code int)  // gannet_smtp_errors_total{direction="in"}, per 4xx/5xx reply sent
	TLSFailure(listener string)         // gannet_tls_failures_total
	// ProxyRefused counts a connection refused for its PROXY protocol
	// header (gannet_proxy_protocol_refused_total{listener,reason}):
	// reason is ProxyUntrusted, ProxyMalformed or ProxyTimeout.
	ProxyRefused(listener, reason string)
}

// nopMetrics is used when Options.Metrics is nil.
type nopMetrics struct{}

func (nopMetrics) ConnOpened(string)    {}
func (nopMetrics) ConnClosed(string)    {}
func (nopMetrics) Received(string, int) {}
func (nopMetrics) ErrorIn(string, int)  {}
func (nopMetrics) TLSFailure(string)    {}

func (nopMetrics) ProxyRefused(string, string) {}

// withDefaults returns cfg with zero fields set to their defaults, or an
// error naming the listener when cfg cannot work.
func (cfg ListenerConfig) withDefaults() (ListenerConfig, error) {
	if cfg.Listen == "" {
		return cfg, fmt.Errorf("inbound: listener %q: empty listen address", cfg.Name)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Listen
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.ImplicitTLS && cfg.TLSConfig == nil {
		return cfg, fmt.Errorf("inbound: listener %q: implicit TLS without a TLS config", cfg.Name)
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.MaxBadCommands <= 0 {
		cfg.MaxBadCommands = DefaultMaxBadCommands
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = DefaultDataTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AuthFailDelayAfter == 0 {
		cfg.AuthFailDelayAfter = DefaultAuthFailDelayAfter
	}
	if cfg.AuthFailDelay == 0 {
		cfg.AuthFailDelay = DefaultAuthFailDelay
	}
	if cfg.AuthFailBlockAfter == 0 {
		cfg.AuthFailBlockAfter = DefaultAuthFailBlockAfter
	}
	if cfg.AuthFailWindow == 0 {
		cfg.AuthFailWindow = DefaultAuthFailWindow
	}
	if cfg.ProxyProtocol && len(cfg.TrustedProxies) == 0 {
		return cfg, fmt.Errorf("inbound: listener %q: proxy_protocol without trusted_proxies would refuse every connection", cfg.Name)
	}
	if cfg.ProxyHeaderTimeout <= 0 {
		cfg.ProxyHeaderTimeout = DefaultProxyHeaderTimeout
	}
	if cfg.TLSConfig != nil {
		c := cfg.TLSConfig.Clone()
		// TLS 1.2 is the floor unless the operator configured one.
		if c.MinVersion == 0 {
			c.MinVersion = tls.VersionTLS12
		}
		cfg.TLSConfig = c
	}
	return cfg, nil
}
