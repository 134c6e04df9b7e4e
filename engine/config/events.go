package config

import (
	"net/url"
	"regexp"
	"time"
)

// EventSink is one [[event_sink]]: a webhook or an AMQP exchange the log
// records are shipped to (engine/events; docs/contract.md, "Event sinks").
type EventSink struct {
	// Name names the sink in metrics, the status and its journal
	// directory (SPOOL/events/NAME).
	Name string `toml:"name"`
	Kind string `toml:"kind"` // EventSinkWebhook | EventSinkAMQP
	// URL is http(s)://… for a webhook, amqp(s)://USER:PASSWORD@HOST:PORT/VHOST
	// for AMQP; `config show` redacts it, as it may hold a password.
	URL string `toml:"url" secret:"true"`
	// Secret keys the webhook's X-Gannet-Signature (HMAC-SHA256).
	Secret string `toml:"secret" secret:"true"`
	// Types are the record types the sink takes; empty: all. Tenant, when
	// set, limits it to that tenant's records.
	Types  []string `toml:"types"`
	Tenant string   `toml:"tenant"`
	// Batch sends up to MaxBatch records at once (a JSON array for a
	// webhook), waiting up to MaxDelay for a batch to fill.
	Batch    bool     `toml:"batch"`
	MaxBatch int      `toml:"max_batch"`
	MaxDelay Duration `toml:"max_delay"`
	// MaxRetryAge: records still failing this long after they were
	// written are dropped. MaxBacklog: past this many records waiting,
	// the oldest are dropped.
	MaxRetryAge Duration `toml:"max_retry_age"`
	MaxBacklog  int      `toml:"max_backlog"`
	// Timeout bounds one request (or one batch's publish and confirms).
	Timeout Duration `toml:"timeout"`
	// Exchange and RoutingKey (a template: {type}, {tenant}, {campaign})
	// are where AMQP messages go.
	Exchange   string `toml:"exchange"`
	RoutingKey string `toml:"routing_key"`
}

// The kinds of [[event_sink]].
const (
	EventSinkWebhook = "webhook"
	EventSinkAMQP    = "amqp"
)

// EventRecordTypes are the record types an [[event_sink]] may list.
var EventRecordTypes = []string{"Reception", "Delivery", "TransientFailure", "Bounce", "Expiration",
	"AdminBounce", "AdminDelete", "DeadLetter", "Rejection", "OOB", "Feedback", "Suppressed"}

// Defaults of [[event_sink]].
const (
	defaultEventMaxDelay    = time.Second
	defaultEventMaxRetryAge = 24 * time.Hour
	defaultEventTimeout     = 30 * time.Second
)

var eventSinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// finishEventSinks fills in the defaults of each [[event_sink]].
func (c *Config) finishEventSinks() {
	for i := range c.EventSinks {
		s := &c.EventSinks[i]
		if s.MaxBatch == 0 {
			s.MaxBatch = 100
		}
		if s.MaxDelay.Duration == 0 {
			s.MaxDelay.Duration = defaultEventMaxDelay
		}
		if s.MaxRetryAge.Duration == 0 {
			s.MaxRetryAge.Duration = defaultEventMaxRetryAge
		}
		if s.MaxBacklog == 0 {
			s.MaxBacklog = 1_000_000
		}
		if s.Timeout.Duration == 0 {
			s.Timeout.Duration = defaultEventTimeout
		}
		if s.RoutingKey == "" {
			s.RoutingKey = "{type}.{tenant}"
		}
	}
}

// MaxEventSinks is how many [[event_sink]]s there may be: the sinks share
// one journal, which marks each record with a bit per sink that takes it
// (engine/events).
const MaxEventSinks = 32

// checkEventSinks checks every [[event_sink]].
func (c *Config) checkEventSinks(ck *checker) {
	if len(c.EventSinks) > MaxEventSinks {
		ck.add(at("event_sink", MaxEventSinks), "at most %d event sinks, not %d", MaxEventSinks, len(c.EventSinks))
	}
	names := map[string]bool{}
	for i, s := range c.EventSinks {
		p := func(k string) []string { return at("event_sink", i, k) }
		switch {
		case s.Name == "":
			ck.add(at("event_sink", i), "needs a name")
		case !eventSinkName.MatchString(s.Name):
			ck.add(p("name"), "%q: letters, digits, '_', '.' and '-' only (it names a directory)", s.Name)
		case names[s.Name]:
			ck.add(p("name"), "event sink %q is defined twice", s.Name)
		}
		names[s.Name] = true
		u, err := url.Parse(s.URL)
		switch s.Kind {
		case EventSinkWebhook:
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				ck.add(p("url"), "a webhook needs an http:// or https:// URL")
			}
			if s.Secret == "" {
				ck.add(p("secret"), "a webhook needs a secret: receivers check the signature made with it")
			}
		case EventSinkAMQP:
			if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
				ck.add(p("url"), "an amqp sink needs an amqp:// or amqps:// URL")
			}
		default:
			ck.oneOf(p("kind"), s.Kind, EventSinkWebhook, EventSinkAMQP)
		}
		for _, t := range s.Types {
			ck.oneOf(p("types"), t, EventRecordTypes...)
		}
		if s.MaxBatch < 1 || s.MaxBatch > 10000 {
			ck.add(p("max_batch"), "must be between 1 and 10000, not %d", s.MaxBatch)
		}
		ck.positive(p("max_delay"), s.MaxDelay)
		ck.positive(p("max_retry_age"), s.MaxRetryAge)
		ck.positive(p("timeout"), s.Timeout)
		ck.atLeast(p("max_backlog"), s.MaxBacklog, 1)
	}
}
