package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gannet/engine/bounce"
	"gannet/engine/certs"
	"gannet/engine/cluster"
	"gannet/engine/config"
	"gannet/engine/console"
	"gannet/engine/delivery"
	"gannet/engine/dkim"
	"gannet/engine/events"
	"gannet/engine/httpapi"
	"gannet/engine/inbound"
	"gannet/engine/logrec"
	"gannet/engine/metrics"
	"gannet/engine/mtasts"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/engine/suppress"
	"gannet/engine/trace"
	"gannet/engine/warmup"
	"gannet/internal/bufpool"
	"gannet/queue"
	"gannet/smtpwire"
)

// Options are what the caller of New gives besides the configuration.
type Options struct {
	// Logger receives operational messages (not the log records). Nil:
	// slog.Default().
	Logger *slog.Logger
	// LogLevel, when set, is the level of Logger's handler: the engine
	// sets it from [log] level at start and on reload, and the admin API
	// (POST /api/admin/log-level/v1) changes it. Nil: the level is the
	// handler's own.
	LogLevel *slog.LevelVar
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// SpoolFS holds the spool's segment files; nil: the operating system's.
	// Tests pass a queuetest.FaultFS to make writes and fsyncs fail.
	SpoolFS queue.FS
	// Suppressor is the suppression list that hard out-of-band bounces
	// and complaints are added to (feedback.go); nil: the engine's own
	// ([suppression], engine/suppress). Tests pass a recording one.
	Suppressor Suppressor
}

// Engine is one running relay.
type Engine struct {
	// cfg is the configuration the engine started with: what only a
	// restart changes (listeners, spool, resolver, …) is read from it.
	// What a reload may change is read through conf() and policy(), from
	// live (reload.go).
	cfg      *config.Config
	live     atomic.Pointer[livePolicy]
	reloadMu sync.Mutex // one Reload at a time
	stopping bool       // Stop has begun: reloads change nothing (under reloadMu)
	log      *slog.Logger
	now      func() time.Time

	spool       *queue.Spool
	bodies      bufpool.Pool // final messages on their way to the spool (store.go: prepare, spoolArrival)
	hot         *hotBodies   // the content of messages just spooled, for their first attempt (hotbody.go)
	ids         *queue.IDGenerator
	records     *logrec.Writer
	events      *events.Shipper // [[event_sink]] (events.go); nil without
	metrics     *metrics.Metrics
	bounces     *bounce.Classifier
	suppress    *suppress.List // the suppression list (suppression.go)
	obs         *observer      // labelled metrics from records and transactions (observe.go)
	resolver    *liveResolver  // nil with relay_to; a reload swaps what it holds
	outbound    *outbound.Manager
	delivery    *delivery.Loop
	inbound     *inbound.Server
	certs       map[string]*certs.Store // by listener name
	listenerTLS map[string]listenerTLS  // by listener name (listeners.go)
	https       []*httpapi.Server
	httpCfgs    []config.HTTPListener // the settings of each of https
	retiring    sync.WaitGroup        // HTTP listeners removed by a reload, still draining
	signers     *dkim.Signers         // [[dkim]] keys at start (sign.go); live.signers after a reload
	shaper      *shaping.Shaper
	warmup      *warmup.Tracker  // nil: no [[egress_source]] warms up
	sts         *mtasts.Cache    // MTA-STS policies (sts.go); nil with relay_to
	tlsrpt      *tlsReports      // TLS reporting (tlsrpt.go); nil with relay_to
	rejects     rejectionLimiter // [log] rejection_rate (rejections.go)
	trace       *trace.Hub       // live SMTP traces, in and out (GET /api/admin/trace/v1/…)
	draining    atomic.Bool      // gannet drain (SetDraining)
	cluster     *cluster.Cluster // [cluster]: the node's view of the cluster (cluster.go); nil without
	logLevel    *slog.LevelVar   // Options.LogLevel: [log] level, set at start, on reload and by the admin API
	suppressor  Suppressor       // Options.Suppressor (feedback.go); nil: none

	// The operator console (console.go): its handler, its history of the
	// metrics (sampled from Start to Stop) and the recent log records.
	console     *console.Console
	history     *console.History
	recent      *console.Recent
	stopHistory context.CancelFunc
	historyDone chan struct{}

	// What policy scripts changed while the relay runs (script.go):
	scriptKeys   keySigners // DKIM keys named by scripts
	unknownPools sync.Map   // egress pool names a script named that do not exist (logged once)

	stopOnce sync.Once
}

// New opens the spool and the log, and builds every part from cfg. Nothing
// listens until Start.
func New(cfg *config.Config, opts Options) (*Engine, error) {
	e := &Engine{cfg: cfg, log: opts.Logger, now: opts.Now, certs: map[string]*certs.Store{}, logLevel: opts.LogLevel,
		suppressor: opts.Suppressor}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.trace = trace.NewHub(e.now)
	e.applyLogLevel(cfg)
	if err := e.startPolicy(); err != nil {
		return nil, err
	}
	pol := e.policy()
	e.metrics = metrics.New()
	e.metrics.SetMaxDestinationLabels(cfg.Metrics.MaxDestinationLabels)
	e.metrics.SetCompat(cfg.Metrics.Compat)
	e.bounces = pol.bounces
	e.obs = newObserver(e.metrics, e.bounces)
	// Classify with the rules in force: a reload may replace them.
	e.obs.classify = func(code int, enhanced, text string) string {
		return e.policy().bounces.Classify(code, enhanced, text).String()
	}
	e.ids = queue.NewIDGenerator(e.now)
	e.hot = newHotBodies(e.bodies.Put)

	var err error
	e.spool, err = queue.Open(queue.Options{
		Dir:         cfg.Spool.Path,
		Compression: cfg.Spool.Compression,
		FS:          opts.SpoolFS,
		Now:         e.now,
		Logf:        func(f string, a ...any) { e.log.Info(fmt.Sprintf(f, a...), "part", "spool") },
		OnCorrupt:   e.spoolCorrupt, // spoolmaint.go
	})
	if err != nil {
		if le := (*queue.LockedError)(nil); errors.As(err, &le) {
			return nil, err // "spool DIR is in use by another gannet (pid N)"
		}
		return nil, fmt.Errorf("spool %s: %w", cfg.Spool.Path, err)
	}
	fail := func(err error) (*Engine, error) {
		e.closeStores()
		return nil, err
	}
	if err := e.buildSuppression(); err != nil {
		return fail(fmt.Errorf("suppression list: %w", err))
	}

	if err := e.buildEvents(); err != nil {
		return fail(fmt.Errorf("event sinks: %w", err))
	}
	// The console's memory of the latest records, which the log feeds.
	e.recent = console.NewRecent(e.now)
	e.history = new(console.History)
	logOpts := logrec.Options{
		Dir:         cfg.Log.Path,
		MaxFileSize: int64(cfg.Log.MaxFileSize),
		MaxFileAge:  cfg.Log.MaxFileAge.Duration,
		Retain:      cfg.Log.Retain.Duration,
		Now:         e.now,
		OnDrop:      func() { e.metrics.LogRecordsDropped.Inc() },
		OnError:     func(err error) { e.log.Error("log records", "err", err) },
		OnRecord:    e.onRecord, // events.go
	}
	if e.events != nil {
		logOpts.OnEncoded = e.onEncoded // events.go
	}
	e.records, err = logrec.New(logOpts)
	if err != nil {
		return fail(fmt.Errorf("log %s: %w", cfg.Log.Path, err))
	}

	if cfg.Delivery.RelayTo == "" {
		r, err := newResolver(cfg, e.now)
		if err != nil {
			return fail(fmt.Errorf("resolver: %w", err))
		}
		e.resolver = new(liveResolver)
		e.resolver.swap(r)
	}

	if err := e.buildTLSRPT(); err != nil {
		return fail(err)
	}
	if err := e.buildSTS(); err != nil {
		return fail(err)
	}
	// The cluster before delivery, which shares its admin rules with it.
	if err := e.buildCluster(); err != nil {
		return fail(err)
	}
	if err := e.buildOutbound(); err != nil {
		return fail(err)
	}
	if err := e.buildInbound(); err != nil {
		return fail(err)
	}
	e.buildConsole()
	if err := e.buildHTTP(); err != nil {
		return fail(err)
	}
	e.metrics.SetQueueDepth(
		func() float64 { s, _ := e.delivery.QueueDepth(); return float64(s) },
		func() float64 { _, r := e.delivery.QueueDepth(); return float64(r) },
	)
	e.metrics.SetDeadDepth(func() float64 { return float64(e.spool.Stats().Dead) })
	return e, nil
}

// startPolicy loads the DKIM keys and builds the live policy from the
// configuration the engine starts with. The keys come first: a missing or
// bad key file stops the start before anything is opened, with an error
// that names the file.
func (e *Engine) startPolicy() error {
	if err := e.buildSigning(); err != nil {
		return err
	}
	pol, err := buildPolicy(e.cfg, nil)
	if err != nil {
		return err
	}
	if err := e.startHooks(e.cfg, pol); err != nil {
		return err
	}
	pol.signers = e.signers
	e.live.Store(pol)
	return nil
}

func (e *Engine) buildOutbound() error {
	cfg := e.cfg
	shaper, err := newShaper(e.conf, e.now, e.scriptLimits, e.backoffChanged, e.tuneChanged, e.ruleSuspended, e.cutChanged())
	if err != nil {
		return err
	}
	e.shaper = shaper
	egress := newEgressChooser(cfg, uint64(e.now().UnixNano()))
	e.outbound = outbound.New(outbound.Options{
		EHLOName:  cfg.Delivery.EHLOName,
		SMTPPort:  cfg.Delivery.SMTPPort,
		PortFor:   e.scriptPort, // a policy script's get_egress_path_config smtp_port
		RelayTo:   cfg.Delivery.RelayTo,
		RelayAuth: e.relayAuth, // reload-safe: read at each new connection
		OnAuthFailure: func(host, peer, user string, r smtpwire.Reply) {
			e.log.Warn("smarthost refused the relay credentials", "relay_to", host, "peer", peer, "relay_user", user, "reply", r.String())
		},
		TLS:            e.policy().tlsDefault,
		TLSFor:         e.tlsFor, // reload-safe ([tls], [tls_policy.*])
		ConnectTimeout: cfg.Delivery.ConnectTimeout.Duration,
		CommandTimeout: cfg.Delivery.CommandTimeout.Duration,
		DataTimeout:    cfg.Delivery.DataTimeout.Duration,
		IdleTimeout:    cfg.Delivery.IdleTimeout.Duration,
		Limits:         shaper.Limits,
		STS:            e.stsFor,  // reload-safe ([tls] mta_sts, [tls_policy.*] mta_sts)
		DANE:           e.daneFor, // reload-safe ([tls] dane, [tls_policy.*] dane)
		OnTLSFailure:   e.tlsFailure,
		TLSObserver:    tlsObserver{e},
		OnTLSHandshake: func(resumed bool) { e.metrics.TLSHandshakesOut(resumed).Inc() },
		OnConnection: func(d int) {
			if d > 0 {
				e.metrics.ConnectionsOut.Inc()
				e.metrics.ConnectionsOpenedOut.Inc()
			} else {
				e.metrics.ConnectionsOut.Dec()
			}
		},
		OnErrorReply:   func(smtpwire.Reply) { e.metrics.SMTPErrorsOut.Inc() },
		SharedConns:    e.sharedConns(),    // cluster_limits.go
		SharedConnRate: e.sharedConnRate(), // cluster_limits.go
		Trace:          e.trace,
		Now:            e.now,
	})
	var router delivery.Router
	if e.resolver != nil {
		router = e.resolver
	}
	opts := delivery.Options{
		Store:        hotStore{e.spool, e.hot},
		Rules:        e.spool, // admin rules outlive a restart (RestoreRules in Start)
		Transport:    e.obs.transport(e.outbound),
		Router:       router,
		RelayTo:      cfg.Delivery.RelayTo,
		RelayFor:     e.relayFor,       // [[tenant]] and [relay."DOMAIN"] relay_to; reload-safe
		Retry:        retryPolicy(cfg), // reload-safe: SetRetry
		Shaper:       shaper,
		Backoff:      shaper,             // backoff mode: kept with the admin rules, shared with them (backoff.go)
		Tuning:       shaper,             // self-tuning: what it learned, kept with the admin rules (tune.go)
		Cuts:         shaper,             // the adaptive back-off other nodes share (cluster_cut.go)
		Handover:     e.handoverIdentity, // gannet xfer between nodes (xferin.go); reload-safe
		TenantRate:   e.tenantRate,       // reload-safe
		Attempted:    e.attempted,        // a policy script's smtp_delivery_result
		RetryFor:     e.queueRetry,       // a policy script's get_queue_config
		ReportingMTA: cfg.Delivery.EHLOName,
		ReturnPath:   e.returnPath, // [feedback] return_path_domain (VERP); reload-safe
		Record:       e.records,
		Classify:     e.classify,
		Metrics:      delivery.EngineMetrics(e.metrics),
		Logger:       e.log,
	}
	if egress.hasPool || cfg.PolicyScript != nil {
		opts.Egress = e.egressFor(egress)
	}
	if e.warmup, err = e.newWarmup(cfg); err != nil { // IP warm-up (warmup.go)
		return err
	}
	if e.warmup != nil {
		opts.Warmup = &warmupGate{e: e, t: e.warmup, ec: egress}
		warmupGauge(e.metrics, e)
	}
	if e.cluster != nil {
		opts.Shared = e.cluster.Rules()       // admin rules shared with the cluster (startCluster)
		opts.SharedRate = &clusterRates{e: e} // cluster_limits.go
		// the tenants' rates too (cluster_tenants.go)
		opts.SharedTenantRate = &clusterTenantRates{e: e, recheck: true}
	}
	if cfg.Delivery.SendBounces {
		opts.SendBounce = e.sendBounce
	}
	// The DSNs a sender asks for with NOTIFY (RFC 3461) are sent whatever
	// send_bounces says; NOTIFY=NEVER silences the bounces it sends.
	opts.SendDSN = e.sendBounce
	opts.DelayWarningAfter = func() time.Duration { return e.conf().Queue.DelayWarningAfter.Duration }
	// Dead letters: expired (and with keep_bounced, bounced) mail is kept
	// while dead_letter_after > 0 (reload-safe); spool maintenance removes
	// it after dead_letter_after.
	opts.DeadLetters = e.spool
	opts.DeadLetterPolicy = func() (bool, bool) {
		q := &e.conf().Queue
		return q.DeadLetterAfter.Duration > 0, q.KeepBounced
	}
	e.delivery = delivery.New(opts)
	siteRateGauge(e.metrics, e.delivery)
	siteBackoffGauge(e.metrics, e.delivery, shaper)
	siteTunedGauge(e.metrics, shaper)
	e.obs.install(e.delivery)
	return nil
}

// Start starts the listeners, then loads the queue from the spool and
// starts delivery. The listeners come first so that a restart with a
// large queue takes mail at once (about 2 s to load a million messages
// here): mail taken meanwhile is spooled and enqueued as always, and is
// delivered, with the loaded mail, once the load has finished. While it
// loads, max_queue_depth counts the messages still to load, and the admin
// API's queue views wait for the load.
func (e *Engine) Start() error {
	// The admin rules first: the API lists them from its first request,
	// and the mail they hold meets them as it loads.
	restored, err := e.delivery.RestoreRules()
	if err != nil {
		return err
	}
	if restored > 0 {
		e.log.Info("admin rules restored", "rules", restored)
	}
	if e.inbound != nil {
		if err := e.inbound.Start(); err != nil {
			return err
		}
		for i, a := range e.inbound.Addrs() {
			e.logSMTPListener(&e.cfg.SMTPListeners[i], a.String())
		}
	}
	for i, h := range e.https {
		if err := h.Start(); err != nil {
			return err
		}
		l := &e.httpCfgs[i]
		e.log.Info("http listening", "addr", h.Addr(), "services", strings.Join(l.Services, ","),
			"trusted_hosts", l.TrustedHosts.String())
	}
	e.startCluster()
	e.startConsoleHistory()
	e.logDelivery()
	e.logSigning()
	t0 := time.Now()
	n, err := e.delivery.Load(e.spool, e.obs.enqueued)
	if err != nil {
		return fmt.Errorf("spool scan: %w", err)
	}
	e.log.Info("queue loaded", "messages", n, "took", time.Since(t0).Round(time.Millisecond))
	e.delivery.Start()
	e.startSpoolMaint()   // compaction and spool health (spoolmaint.go); ends when the spool closes
	e.startBackoffClock() // backoff mode ends on time (backoff.go); ends when the spool closes
	e.startTLSRPT()       // the daily TLS reports (tlsrpt.go)
	if e.events != nil {
		e.events.Start()
	}
	return nil
}

// SMTPAddrs returns the bound SMTP listener addresses (after Start).
func (e *Engine) SMTPAddrs() []net.Addr {
	if e.inbound == nil {
		return nil
	}
	return e.inbound.Addrs()
}

// HTTPAddrs returns the bound address of each HTTP listener (after Start),
// in config order.
func (e *Engine) HTTPAddrs() []string {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	out := make([]string, len(e.https))
	for i, h := range e.https {
		out[i] = h.Addr()
	}
	return out
}

// Stop stops accepting mail, lets in-flight work finish (until ctx ends),
// and closes the spool and the log.
func (e *Engine) Stop(ctx context.Context) error {
	var errs []error
	e.stopOnce.Do(func() {
		e.draining.Store(true)
		// No report is queued once delivery stops.
		errs = append(errs, e.stopTLSRPT())
		e.trace.Close()   // trace streams end: the HTTP servers need not wait for them
		e.reloadMu.Lock() // a reload in progress ends first
		https := append([]*httpapi.Server(nil), e.https...)
		e.stopping = true
		e.reloadMu.Unlock()
		for _, h := range https {
			errs = append(errs, h.Shutdown(ctx))
		}
		if e.inbound != nil {
			errs = append(errs, e.inbound.Stop(ctx))
		}
		// HTTP listeners removed by a reload, finishing their requests.
		done := make(chan struct{})
		go func() { e.retiring.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
		}
		e.stopConsoleHistory()
		if e.delivery != nil {
			errs = append(errs, e.delivery.Stop(ctx))
		}
		if e.cluster != nil {
			e.cluster.Stop() // the other nodes see this one gone at once
		}
		if e.sts != nil {
			e.sts.Close() // background MTA-STS policy refreshes
		}
		errs = append(errs, e.closeStores())
	})
	return errors.Join(errs...)
}

func (e *Engine) closeStores() error {
	var errs []error
	errs = append(errs, e.stopTLSRPT()) // a second call is a no-op
	if e.records != nil {
		errs = append(errs, e.records.Close())
	}
	if e.events != nil {
		// After the log: its last records are in the journals.
		errs = append(errs, e.events.Close())
	}
	if e.spool != nil {
		errs = append(errs, e.spool.Close())
	}
	return errors.Join(errs...)
}

// dataDir is where generated state other than the spool lives (the
// self-signed certificate): the spool's parent directory.
func (e *Engine) dataDir() string {
	return filepath.Dir(filepath.Clean(e.cfg.Spool.Path))
}
