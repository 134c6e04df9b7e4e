package config

import "gannet/mailaddr"

// Config is the whole configuration file. Every field carries the TOML key it
// is read from; see default.toml for what each key means and its default.
type Config struct {
	Spool         Spool                   `toml:"spool"`
	Log           Log                     `toml:"log"`
	SMTPListeners []SMTPListener          `toml:"smtp_listener"`
	SMTPUsers     []SMTPUser              `toml:"smtp_user"`
	HTTPListeners []HTTPListener          `toml:"http_listener"`
	APIKeys       []APIKey                `toml:"api_key"`
	Resolver      Resolver                `toml:"resolver"`
	Delivery      Delivery                `toml:"delivery"`
	TLS           TLS                     `toml:"tls"`
	Queue         Queue                   `toml:"queue"`
	Suppression   Suppression             `toml:"suppression"`
	Meta          Meta                    `toml:"meta"`
	DKIM          []DKIM                  `toml:"dkim"`
	Tenants       []Tenant                `toml:"tenant"`
	ShapingTables map[string]ShapingTable `toml:"shaping"` // "default" and destination domains (lower case)

	// Delivery policy (egress.go): egress sources and pools, automation
	// rules, adaptive back-off and per-domain TLS policies.
	EgressSources []EgressSource           `toml:"egress_source"`
	EgressPools   []EgressPool             `toml:"egress_pool"`
	ShapingRules  []AutomationRule         `toml:"shaping_rule"`
	Backoff       Backoff                  `toml:"backoff"`
	TLSPolicies   map[string]TLSOverride   `toml:"tls_policy"` // by destination domain (lower case)
	Relays        map[string]RelayOverride `toml:"relay"`      // smarthosts by destination domain (lower case)

	Metrics Metrics      `toml:"metrics"`
	Bounce  BounceConfig `toml:"bounce"`
	Policy  Policy       `toml:"policy"`
	Server  Server       `toml:"server"`
	Cluster Cluster      `toml:"cluster"` // cluster.go
	Xfer    Xfer         `toml:"xfer"`    // xfer.go

	Feedback   Feedback    `toml:"feedback"`   // feedback.go
	EventSinks []EventSink `toml:"event_sink"` // events.go

	// File is the path the configuration was read from; "" for Default().
	File string `toml:"-"`

	// PolicyScript is the policy script the configuration came with (a
	// .lua configuration file, or [policy] script), whose event hooks the
	// engine starts; nil for none. It is set by the loader of the script,
	// engine/policy/lua (a *lua.Script: this package cannot name the type).
	PolicyScript any `toml:"-"`

	// loginDummy is the bcrypt hash Login compares the password of an
	// unknown AUTH name with (makeLoginDummy); nil without password_hash.
	loginDummy []byte
	// relayPassword is the content of [delivery] relay_password_file, read
	// by validate (RelayPassword); relayPasswords those of the [[tenant]]
	// ("tenant:NAME") and [relay."DOMAIN"] ("domain:DOMAIN") files.
	relayPassword  string
	relayPasswords map[string]string
}

// Spool is [spool]: where accepted messages are kept until delivered.
type Spool struct {
	Path        string `toml:"path"`
	Compression string `toml:"compression"` // zstd | s2 | none
}

// Suppression modes ([suppression] mode).
const (
	SuppressionRefuse = "refuse"
	SuppressionDrop   = "drop"
	SuppressionOff    = "off"
)

// Suppression is [suppression]: the suppression list (engine/suppress).
type Suppression struct {
	// Mode is SuppressionRefuse, SuppressionDrop or SuppressionOff.
	Mode string `toml:"mode"`
	// TTL is how long an entry counts after it was added; 0: for ever.
	TTL Duration `toml:"ttl"`
	// BounceClasses are the bounce classes whose bounces add the
	// recipient to its tenant's list.
	BounceClasses []string `toml:"bounce_classes"`
}

// Metrics is [metrics]: the Prometheus metrics served at /metrics.
type Metrics struct {
	// MaxDestinationLabels caps the label values of the per-site,
	// per-domain, per-tenant and per-campaign series: the busiest by
	// volume get their own, the rest are summed as "other".
	MaxDestinationLabels int `toml:"max_destination_labels"`
	// Compat adds another MTA's metric names for the metrics Gannet has an
	// equivalent of: "kumomta", or "" (the default) for Gannet's only.
	Compat string `toml:"compat"`
}

// BounceConfig is [bounce]: bounce classification.
type BounceConfig struct {
	// RulesFile is an operator's classification rules (TOML), tried before
	// the built-in ones; "" for the built-in rules only.
	RulesFile string `toml:"rules_file"`
}

// Policy is [policy]: a Lua policy script.
type Policy struct {
	// Script is a Lua file whose configuration calls are applied over
	// this configuration when it is loaded (engine.LoadConfig); "": none.
	Script string `toml:"script"`
	// HookTimeout is the time budget of one call of an event hook.
	HookTimeout Duration `toml:"hook_timeout"`
}

// Log is [log]: where the JSON-lines log records go.
type Log struct {
	Path string `toml:"path"`
	// MaxFileSize and MaxFileAge: a new file is started past either; the
	// closed one is compressed (NAME.jsonl.zst).
	MaxFileSize Size     `toml:"max_file_size"`
	MaxFileAge  Duration `toml:"max_file_age"`
	// Retain: closed files last written longer ago than this are deleted;
	// 0 keeps every file.
	Retain Duration `toml:"retain"`
	// Level of the operational log (stderr): "debug", "info", "warn" or
	// "error". A reload applies it, and so does POST /api/admin/log-level/v1.
	Level string `toml:"level"`
	// Rejection records (a 4xx/5xx answered to an SMTP client) are capped:
	// at most RejectionsPerConnection per connection (0: none at all) and
	// RejectionRate over the whole server; the rest are counted in
	// gannet_rejection_records_dropped_total{reason}.
	RejectionsPerConnection int  `toml:"rejections_per_connection"`
	RejectionRate           Rate `toml:"rejection_rate"`
}

// Values of SMTPListener.BareLF.
const (
	BareLFNormalize = "normalize"
	BareLFReject    = "reject"
)

// SMTPListener is one [[smtp_listener]]: an SMTP port that accepts mail.
type SMTPListener struct {
	Name                string     `toml:"name"`   // metrics label and log field; defaults to Listen
	Listen              string     `toml:"listen"` // "host:port"
	Hostname            string     `toml:"hostname"`
	RelayHosts          CIDRList   `toml:"relay_hosts"`
	ImplicitTLS         bool       `toml:"implicit_tls"`
	TLSCert             string     `toml:"tls_cert"`
	TLSKey              string     `toml:"tls_key"`
	TLSMinVersion       TLSVersion `toml:"tls_min_version"` // "1.0" | "1.1" | "1.2" | "1.3"
	AuthMechanisms      []string   `toml:"auth_mechanisms"` // upper case after Load
	AuthRequireTLS      bool       `toml:"auth_require_tls"`
	AuthFailDelayAfter  int        `toml:"auth_fail_delay_after"` // failed AUTH per address before answers wait AuthFailDelay; 0: off
	AuthFailDelay       Duration   `toml:"auth_fail_delay"`
	AuthFailBlockAfter  int        `toml:"auth_fail_block_after"` // failed AUTH per address before 421 4.7.0 for AuthFailWindow; 0: off
	AuthFailWindow      Duration   `toml:"auth_fail_window"`      // failures are counted within it
	MaxMessageSize      Size       `toml:"max_message_size"`
	MaxRecipients       int        `toml:"max_recipients"`
	BareLF              string     `toml:"bare_lf"`                // BareLFNormalize | BareLFReject
	MaxConnections      int        `toml:"max_connections"`        // 0: unlimited
	MaxConnectionsPerIP int        `toml:"max_connections_per_ip"` // 0: unlimited
	MaxBadCommands      int        `toml:"max_bad_commands"`
	CommandTimeout      Duration   `toml:"command_timeout"`
	DataTimeout         Duration   `toml:"data_timeout"`
	IdleTimeout         Duration   `toml:"idle_timeout"`
	SessionTimeout      Duration   `toml:"session_timeout"` // whole connection; 0: no limit
	// ProxyProtocol: every connection starts with a PROXY protocol header
	// (v1 or v2) from an address in TrustedProxies, whose client address
	// is then the connection's for everything; ProxyHeaderTimeout bounds
	// the wait for it.
	ProxyProtocol      bool     `toml:"proxy_protocol"`
	TrustedProxies     CIDRList `toml:"trusted_proxies"`
	ProxyHeaderTimeout Duration `toml:"proxy_header_timeout"`
	// Feedback: every recipient on this listener is a bounce or FBL
	// address: its mail is taken from anyone and consumed as feedback
	// (OOB and Feedback records), never relayed ([feedback], feedback.go).
	Feedback bool `toml:"feedback"`
}

// SelfSignedTLS reports whether the listener uses the generated self-signed
// certificate (no tls_cert/tls_key given).
func (l *SMTPListener) SelfSignedTLS() bool { return l.TLSCert == "" && l.TLSKey == "" }

// SMTPUser is one [[smtp_user]]: an SMTP AUTH account.
type SMTPUser struct {
	Name         string `toml:"name"`
	Password     string `toml:"password" secret:"true"`
	PasswordHash string `toml:"password_hash" secret:"true"` // bcrypt
	Tenant       string `toml:"tenant"`
}

// Services an HTTP listener can serve.
const (
	ServiceInject  = "inject"
	ServiceAdmin   = "admin"
	ServiceMetrics = "metrics"
	ServiceConsole = "console" // the operator console at /console/ (engine/console)
)

// HTTPListener is one [[http_listener]]: the inject, admin and metrics API.
type HTTPListener struct {
	Listen       string   `toml:"listen"`
	TrustedHosts CIDRList `toml:"trusted_hosts"`
	Services     []string `toml:"services"`
	// MaxMessageSize bounds each message the inject API builds or takes
	// (413 past it), as max_message_size does for SMTP.
	MaxMessageSize Size `toml:"max_message_size"`
	// MaxInjectBytes bounds all the messages one inject request builds
	// together (413 past it, and none is spooled).
	MaxInjectBytes Size `toml:"max_inject_bytes"`
	// TrustedProxies are the proxies whose X-Forwarded-For (its rightmost
	// address outside them) names the client; with ProxyProtocol every
	// connection starts with a PROXY protocol header from one of them.
	TrustedProxies CIDRList `toml:"trusted_proxies"`
	ProxyProtocol  bool     `toml:"proxy_protocol"`
}

// Serves reports whether the listener serves service (ServiceInject, …).
func (l *HTTPListener) Serves(service string) bool {
	for _, s := range l.Services {
		if s == service {
			return true
		}
	}
	return false
}

// APIKey is one [[api_key]]: a bearer token for the HTTP API.
type APIKey struct {
	Key       string `toml:"key" secret:"true"`
	KeySHA256 string `toml:"key_sha256" secret:"true"` // hex SHA-256 of the key, lower case after Load
	Tenant    string `toml:"tenant"`
	// Role lets the key log in to the console: RoleAdmin may act,
	// RoleViewer only look (and, on the admin API, only GET). "" is an
	// API key that cannot log in to the console.
	Role string `toml:"role"`
}

// Roles of an [[api_key]].
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// Server is [server]: the process as a whole.
type Server struct {
	// DrainTimeout is how long SIGTERM waits for the sessions in progress
	// to finish before the process exits.
	DrainTimeout Duration `toml:"drain_timeout"`
}

// Resolver is [resolver]: DNS for delivery.
type Resolver struct {
	Nameservers []string `toml:"nameservers"` // "ip:port"; empty: /etc/resolv.conf
	Timeout     Duration `toml:"timeout"`
	// DNSSEC: ResolverDNSSECTrustAD believes the AD bit of the nameservers'
	// answers (they must be validating resolvers on this host); "" or
	// ResolverDNSSECOff ignores it. DANE needs "trust-ad".
	DNSSEC string `toml:"dnssec"`
}

// Values of Resolver.DNSSEC.
const (
	ResolverDNSSECOff     = "off"
	ResolverDNSSECTrustAD = "trust-ad"
)

// TrustAD reports whether [resolver] dnssec is "trust-ad".
func (r *Resolver) TrustAD() bool { return r.DNSSEC == ResolverDNSSECTrustAD }

// Delivery is [delivery]: outbound SMTP.
type Delivery struct {
	EHLOName string `toml:"ehlo_name"`
	SMTPPort int    `toml:"smtp_port"`
	RelayTo  string `toml:"relay_to"` // "host:port" smarthost; "" = MX delivery
	// The smarthost's login and TLS (engine/outbound RelayAuth): AUTH
	// PLAIN or LOGIN as RelayUser with RelayPassword, or the first line of
	// RelayPasswordFile (read at load and at every reload).
	RelayUser                  string   `toml:"relay_user"`
	RelayPassword              string   `toml:"relay_password" secret:"true"`
	RelayPasswordFile          string   `toml:"relay_password_file"`
	RelayTLS                   string   `toml:"relay_tls"` // RelayTLSStartTLS, RelayTLSImplicit, RelayTLSNone
	RelayAllowInsecureAuth     bool     `toml:"relay_allow_insecure_auth"`
	MaxConnectionsPerDomain    int      `toml:"max_connections_per_domain"`
	MaxMessageRate             Rate     `toml:"max_message_rate"`
	MaxDeliveriesPerConnection int      `toml:"max_deliveries_per_connection"`
	ConnectTimeout             Duration `toml:"connect_timeout"`
	CommandTimeout             Duration `toml:"command_timeout"`
	DataTimeout                Duration `toml:"data_timeout"`
	IdleTimeout                Duration `toml:"idle_timeout"`
	EgressPool                 string   `toml:"egress_pool"`  // [[egress_pool]] of tenants without one; "" = kernel's choice
	SendBounces                bool     `toml:"send_bounces"` // RFC 3464 bounce messages to the envelope sender
}

// Values of Delivery.RelayTLS.
const (
	RelayTLSStartTLS = "starttls"
	RelayTLSImplicit = "implicit"
	RelayTLSNone     = "none"
)

// RelayPassword returns the smarthost password: [delivery] relay_password,
// or what relay_password_file held when the file was loaded.
func (c *Config) RelayPassword() string {
	if c.Delivery.RelayPassword != "" {
		return c.Delivery.RelayPassword
	}
	return c.relayPassword
}

// Smarthost is where mail goes when not to the MX hosts, and the login
// there.
type Smarthost struct {
	RelayTo           string // "host:port"; "": the MX hosts
	User              string // "": no AUTH
	Password          string
	TLS               string // RelayTLSStartTLS ("" too), RelayTLSImplicit, RelayTLSNone
	AllowInsecureAuth bool
}

// SmarthostFor returns the smarthost for mail of tenant to domain: the
// tenant's relay_to ([[tenant]]), else the domain's ([relay."DOMAIN"]),
// else [delivery] relay_to; each with its own login (not inherited).
func (c *Config) SmarthostFor(tenant, domain string) Smarthost {
	if t := c.Tenant(tenant); t != nil && t.RelayTo != "" {
		return Smarthost{RelayTo: t.RelayTo, User: t.RelayUser, Password: c.overridePassword("tenant:"+t.Name, t.RelayPassword),
			TLS: t.RelayTLS, AllowInsecureAuth: t.RelayAllowInsecureAuth}
	}
	if len(c.Relays) > 0 {
		d := mailaddr.CanonicalDomain(domain)
		if r, ok := c.Relays[d]; ok && r.RelayTo != "" {
			return Smarthost{RelayTo: r.RelayTo, User: r.RelayUser, Password: c.overridePassword("domain:"+d, r.RelayPassword),
				TLS: r.RelayTLS, AllowInsecureAuth: r.RelayAllowInsecureAuth}
		}
	}
	d := &c.Delivery
	return Smarthost{RelayTo: d.RelayTo, User: d.RelayUser, Password: c.RelayPassword(), TLS: d.RelayTLS, AllowInsecureAuth: d.RelayAllowInsecureAuth}
}

// HasRelayOverrides reports whether any [[tenant]] or [relay."DOMAIN"]
// names a smarthost.
func (c *Config) HasRelayOverrides() bool {
	for _, t := range c.Tenants {
		if t.RelayTo != "" {
			return true
		}
	}
	for _, r := range c.Relays {
		if r.RelayTo != "" {
			return true
		}
	}
	return false
}

func (c *Config) overridePassword(key, inline string) string {
	if inline != "" {
		return inline
	}
	return c.relayPasswords[key]
}

// Values of TLS.Mode.
const (
	TLSOpportunistic         = "opportunistic"
	TLSOpportunisticInsecure = "opportunistic-insecure"
	TLSRequired              = "required"
	TLSDisabled              = "disabled"
)

// TLS is [tls]: the outbound TLS policy.
type TLS struct {
	Mode       string     `toml:"mode"`        // TLSOpportunistic, …
	MinVersion TLSVersion `toml:"min_version"` // "1.0" | "1.1" | "1.2" | "1.3"
	Ciphers    []string   `toml:"ciphers"`     // crypto/tls suite names; empty: Go's defaults
	// FallbackPlaintext: in the opportunistic modes, a failed STARTTLS
	// handshake is retried in the clear.
	FallbackPlaintext bool `toml:"fallback_plaintext"`
	// MTASTS: honour the destinations' MTA-STS policies (RFC 8461).
	MTASTS bool `toml:"mta_sts"`
	// DANE: honour the TLSA records of MX hosts found securely (RFC 7672);
	// effective only with [resolver] dnssec = "trust-ad".
	DANE bool `toml:"dane"`
	// CAFile: PEM certificates trusted, besides the system roots, to verify
	// MX hosts and MTA-STS policy servers ("": the system roots only).
	CAFile string `toml:"ca_file"`
	// TLSRPT: count TLS sessions per destination and send daily TLS
	// reports (RFC 8460) to the domains that publish a _smtp._tls record.
	TLSRPT bool `toml:"tlsrpt"`
	// TLSRPTOrganization is the reports' organization-name ("": the
	// [delivery] ehlo_name).
	TLSRPTOrganization string `toml:"tlsrpt_organization"`
	// TLSRPTContact is the reports' contact-info ("": TLSRPTSender).
	TLSRPTContact string `toml:"tlsrpt_contact"`
	// TLSRPTSender is the From address of mailto: reports ("":
	// "postmaster@" the ehlo_name); its domain is the reports' submitter
	// and is DKIM-signed when a [[dkim]] key for it exists.
	TLSRPTSender string `toml:"tlsrpt_sender"`
}

// Queue is [queue]: admission and the retry schedule.
type Queue struct {
	MaxQueueDepth    int      `toml:"max_queue_depth"`
	RetryInterval    Duration `toml:"retry_interval"`
	MaxRetryInterval Duration `toml:"max_retry_interval"`
	MaxRetryAge      Duration `toml:"max_retry_age"`
	// DeadLetterAfter: how long a message that can no longer be delivered
	// (expired, or bounced with KeepBounced) is kept as a dead letter
	// before maintenance removes it; 0 keeps none (such mail is removed at
	// once, as before dead letters).
	DeadLetterAfter Duration `toml:"dead_letter_after"`
	// KeepBounced: a permanent failure makes a dead letter too.
	KeepBounced bool `toml:"keep_bounced"`
	// DelayWarningAfter: a recipient whose DSN request (RFC 3461 NOTIFY)
	// includes DELAY and that is still undelivered this long after the
	// message arrived gets one "delayed" DSN; 0 sends none.
	DelayWarningAfter Duration `toml:"delay_warning_after"`
	// GreylistRetry: a recipient whose first attempt was greylisted
	// (shaping.Greylisting) is retried this long after it rather than
	// after retry_interval; 0 keeps the retry schedule.
	GreylistRetry Duration `toml:"greylist_retry"`
}

// Meta is [meta]: headers that carry routing metadata.
type Meta struct {
	TenantHeader     string `toml:"tenant_header"`
	CampaignHeader   string `toml:"campaign_header"`
	PriorityHeader   string `toml:"priority_header"`
	StripMetaHeaders bool   `toml:"strip_meta_headers"`
	// AddMissingHeaders adds Date and Message-ID (RFC 5322 §3.6) to a
	// message that lacks them, before it is signed.
	AddMissingHeaders bool `toml:"add_missing_headers"`
}

// DKIM is one [[dkim]]: a signing key for a domain.
type DKIM struct {
	Domain   string   `toml:"domain"` // lower case after Load
	Selector string   `toml:"selector"`
	KeyFile  string   `toml:"key_file"`
	Headers  []string `toml:"headers"`
}

// Tenant is one [[tenant]]: a sender with its own limits and signing domains.
type Tenant struct {
	Name           string `toml:"name"`
	MaxMessageRate Rate   `toml:"max_message_rate"`
	// LimitScope says who shares MaxMessageRate with [cluster]: the whole
	// cluster (LimitScopeCluster, and "", the default) or each node on its
	// own (LimitScopeNode), as for a shaping rule.
	LimitScope string `toml:"limit_scope"`
	// DKIMDomain signs every message of the tenant (lower case after Load).
	DKIMDomain string `toml:"dkim_domain"`
	// DKIMDomains are the tenant's other From domains: a message of the
	// tenant is signed with its From domain's [[dkim]] key only when that
	// domain is DKIMDomain or one of these (canonical after Load,
	// mailaddr.CanonicalDomain).
	DKIMDomains     []string `toml:"dkim_domains"`
	ListUnsubscribe string   `toml:"list_unsubscribe"` // URL template; "{id}" is replaced by the message id
	EgressPool      string   `toml:"egress_pool"`      // [[egress_pool]] name; "" = [delivery] egress_pool
	// The tenant's own smarthost (SmarthostFor): its mail goes there, with
	// this login, instead of [delivery] relay_to or the MX hosts.
	RelayTo                string `toml:"relay_to"`
	RelayUser              string `toml:"relay_user"`
	RelayPassword          string `toml:"relay_password" secret:"true"`
	RelayPasswordFile      string `toml:"relay_password_file"`
	RelayTLS               string `toml:"relay_tls"`
	RelayAllowInsecureAuth bool   `toml:"relay_allow_insecure_auth"`
}

// RelayOverride is one [relay."DOMAIN"]: the smarthost, with its login,
// that mail to DOMAIN goes to (SmarthostFor).
type RelayOverride struct {
	RelayTo                string `toml:"relay_to"`
	RelayUser              string `toml:"relay_user"`
	RelayPassword          string `toml:"relay_password" secret:"true"`
	RelayPasswordFile      string `toml:"relay_password_file"`
	RelayTLS               string `toml:"relay_tls"`
	RelayAllowInsecureAuth bool   `toml:"relay_allow_insecure_auth"`
}

// HasDomain reports whether domain (in any form) is one of the
// tenant's own: its dkim_domain or one of its dkim_domains.
func (t *Tenant) HasDomain(domain string) bool {
	if domain = mailaddr.CanonicalDomain(domain); domain == "" {
		return false
	}
	if t.DKIMDomain == domain {
		return true
	}
	for _, d := range t.DKIMDomains {
		if d == domain {
			return true
		}
	}
	return false
}

// ShapingTable is one [shaping.NAME] table as written. A nil field was not
// set in the file; see Config.Shaping for how tables combine.
type ShapingTable struct {
	ConnectionLimit            *int  `toml:"connection_limit"`
	MaxMessageRate             *Rate `toml:"max_message_rate"`
	MaxDeliveriesPerConnection *int  `toml:"max_deliveries_per_connection"`
	MaxConnectionRate          *Rate `toml:"max_connection_rate"`
	// LimitScope is LimitScopeCluster or LimitScopeNode; see
	// ShapingRule.LimitScope.
	LimitScope *string `toml:"limit_scope"`
	// MXSuffix makes the table a provider table: it applies to every
	// destination whose MX host names all end in one of these suffixes
	// (".google.com"); the table name is then only a label.
	MXSuffix []string `toml:"mx_suffix"`

	// Backoff mode (ShapingRule.Backoff*): the keys that put a site in
	// backoff on its deferral rate and say what backoff means.
	BackoffOnDeferralRate          *float64  `toml:"backoff_on_deferral_rate"`
	BackoffWindow                  *Duration `toml:"backoff_window"`
	BackoffMinAttempts             *int      `toml:"backoff_min_attempts"`
	BackoffRate                    *Rate     `toml:"backoff_rate"`
	BackoffRetryAfter              *Duration `toml:"backoff_retry_after"`
	BackoffToNormalAfter           *Duration `toml:"backoff_to_normal_after"`
	BackoffToNormalAfterDeliveries *int      `toml:"backoff_to_normal_after_deliveries"`

	// Self-tuning (ShapingRule.Tune*).
	Tune               *bool     `toml:"tune"`
	TuneTargetDeferral *float64  `toml:"tune_target_deferral"`
	TuneWindow         *Duration `toml:"tune_window"`
	TuneMinAttempts    *int      `toml:"tune_min_attempts"`
	TuneMinRate        *Rate     `toml:"tune_min_rate"`
}

// Tenant returns the [[tenant]] named name, or nil.
func (c *Config) Tenant(name string) *Tenant {
	for i := range c.Tenants {
		if c.Tenants[i].Name == name {
			return &c.Tenants[i]
		}
	}
	return nil
}

// DomainTenant returns the first [[tenant]] that has domain as its own
// (Tenant.HasDomain), or nil.
func (c *Config) DomainTenant(domain string) *Tenant {
	for i := range c.Tenants {
		if c.Tenants[i].HasDomain(domain) {
			return &c.Tenants[i]
		}
	}
	return nil
}

// DKIMKey returns the [[dkim]] entry for domain (in any form: the domains
// are canonical once loaded, mailaddr.CanonicalDomain), or nil.
func (c *Config) DKIMKey(domain string) *DKIM {
	domain = mailaddr.CanonicalDomain(domain)
	for i := range c.DKIM {
		if c.DKIM[i].Domain == domain {
			return &c.DKIM[i]
		}
	}
	return nil
}

// SMTPListener returns the [[smtp_listener]] named name, or nil.
func (c *Config) SMTPListener(name string) *SMTPListener {
	for i := range c.SMTPListeners {
		if c.SMTPListeners[i].Name == name {
			return &c.SMTPListeners[i]
		}
	}
	return nil
}
