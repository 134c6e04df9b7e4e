package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gannet/engine/bounce"
	"gannet/engine/handover"

	"golang.org/x/crypto/bcrypt"
)

// problem is one thing wrong with a configuration, at a key path (see
// lineIndex for the form of paths).
type problem struct {
	path []string
	msg  string
}

func (p problem) String() string {
	if len(p.path) == 0 {
		return p.msg
	}
	return displayPath(p.path) + ": " + p.msg
}

// at builds a key path: at("smtp_listener", 1, "listen").
func at(parts ...any) []string {
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case int:
			out = append(out, elem(v))
		}
	}
	return out
}

type checker struct{ list []problem }

func (ck *checker) add(path []string, format string, args ...any) {
	ck.list = append(ck.list, problem{path: path, msg: fmt.Sprintf(format, args...)})
}

func (ck *checker) positive(path []string, d Duration) {
	if d.Duration <= 0 {
		ck.add(path, "must be a positive duration, not %q", d.Duration.String())
	}
}

func (ck *checker) notNegative(path []string, d Duration) {
	if d.Duration < 0 {
		ck.add(path, "must not be negative, not %q", d.Duration.String())
	}
}

func (ck *checker) atLeast(path []string, v, min int) {
	if v < min {
		ck.add(path, "must be at least %d, not %d", min, v)
	}
}

func (ck *checker) oneOf(path []string, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ck.add(path, "%q is not one of %s", v, quoteList(allowed))
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// hostPort checks "host:port"; needHost requires a host and portMin the
// lowest port allowed (listeners may use 0: any free port).
func (ck *checker) hostPort(path []string, v string, needHost bool, portMin int) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		ck.add(path, "%q is not host:port", v)
		return
	}
	if needHost && host == "" {
		ck.add(path, "%q has no host", v)
	}
	if strings.ContainsAny(host, " \t") {
		ck.add(path, "%q has a blank in its host", v)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < portMin || n > 65535 {
		ck.add(path, "%q has a bad port (%d-65535)", v, portMin)
	}
}

// tlsFile checks that the certificate or key file of a listener can be
// read, and names the listener and the file when it cannot.
func (ck *checker) tlsFile(path []string, listener, file string) bool {
	if file == "" {
		return true
	}
	f, err := os.Open(file)
	if err != nil {
		cause := err
		if pe, ok := err.(*os.PathError); ok {
			cause = pe.Err
		}
		ck.add(path, "smtp_listener %q: %s %s: %v", listener, path[len(path)-1], file, cause)
		return false
	}
	f.Close()
	return true
}

func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Sprintf("%q: %v", pe.Path, pe.Err)
	}
	return err.Error()
}

// validate returns every problem of a configuration after finish.
func (c *Config) validate() []problem {
	ck := &checker{}

	if c.Spool.Path == "" {
		ck.add(at("spool", "path"), "must not be empty")
	}
	ck.oneOf(at("spool", "compression"), c.Spool.Compression, "zstd", "s2", "none")
	if c.Log.Path == "" {
		ck.add(at("log", "path"), "must not be empty")
	}
	if c.Log.MaxFileSize < 1<<20 {
		ck.add(at("log", "max_file_size"), "must be at least 1MiB, not %d bytes", int64(c.Log.MaxFileSize))
	}
	ck.positive(at("log", "max_file_age"), c.Log.MaxFileAge)
	ck.oneOf(at("log", "level"), c.Log.Level, "debug", "info", "warn", "error")
	ck.atLeast(at("log", "rejections_per_connection"), c.Log.RejectionsPerConnection, 0)
	if c.Log.Retain.Duration < 0 {
		ck.add(at("log", "retain"), "must not be negative (0 keeps every file)")
	}
	if c.Metrics.MaxDestinationLabels < 1 {
		ck.add(at("metrics", "max_destination_labels"), "must be at least 1")
	}
	ck.oneOf(at("metrics", "compat"), c.Metrics.Compat, "", "kumomta")
	if f := c.Bounce.RulesFile; f != "" {
		if _, err := bounce.LoadFile(f); err != nil {
			ck.add(at("bounce", "rules_file"), "%v", err)
		}
	}
	if f := c.Policy.Script; f != "" && !strings.EqualFold(filepath.Ext(f), ".lua") {
		ck.add(at("policy", "script"), "%q is not a Lua file (NAME.lua)", f)
	}
	if d := c.Policy.HookTimeout.Duration; d < time.Millisecond || d > time.Minute {
		ck.add(at("policy", "hook_timeout"), "must be between 1ms and 1m, like \"100ms\"")
	}

	tenants := map[string]bool{}
	for i, t := range c.Tenants {
		p := func(k string) []string { return at("tenant", i, k) }
		switch {
		case t.Name == "":
			ck.add(at("tenant", i), "needs a name")
		case tenants[t.Name]:
			ck.add(p("name"), "tenant %q is defined twice", t.Name)
		}
		tenants[t.Name] = true
		if t.LimitScope != "" {
			ck.oneOf(p("limit_scope"), t.LimitScope, LimitScopeCluster, LimitScopeNode)
		}
		if t.DKIMDomain != "" && c.DKIMKey(t.DKIMDomain) == nil {
			ck.add(p("dkim_domain"), "no [[dkim]] entry has domain %q", t.DKIMDomain)
		}
		for _, d := range t.DKIMDomains {
			if c.DKIMKey(d) == nil {
				ck.add(p("dkim_domains"), "no [[dkim]] entry has domain %q", d)
			}
		}
		if t.ListUnsubscribe != "" {
			u, err := url.Parse(t.ListUnsubscribe)
			if err != nil || (u.Scheme != "https" && u.Scheme != "mailto") || (u.Scheme == "https" && u.Host == "") {
				ck.add(p("list_unsubscribe"), "%q is not an https: or mailto: URL (RFC 8058 section 3.1)", t.ListUnsubscribe)
			}
		}
	}
	tenantRef := func(path []string, name string) {
		if name != "" && !tenants[name] {
			ck.add(path, "no [[tenant]] is named %q", name)
		}
	}

	listens := map[string]string{} // listen address → who has it
	listen := func(path []string, addr string) {
		ck.hostPort(path, addr, false, 0)
		if other, dup := listens[addr]; dup && !strings.HasSuffix(addr, ":0") {
			ck.add(path, "%q is already used by %s", addr, other)
		}
		listens[addr] = displayPath(path)
	}

	names := map[string]bool{}
	for i := range c.SMTPListeners {
		l := &c.SMTPListeners[i]
		p := func(k string) []string { return at("smtp_listener", i, k) }
		listen(p("listen"), l.Listen)
		if names[l.Name] {
			ck.add(p("name"), "listener name %q is used twice", l.Name)
		}
		names[l.Name] = true
		if (l.TLSCert == "") != (l.TLSKey == "") {
			ck.add(p("tls_cert"), "tls_cert and tls_key go together: set both or neither")
		}
		certOK := ck.tlsFile(p("tls_cert"), l.Name, l.TLSCert)
		keyOK := ck.tlsFile(p("tls_key"), l.Name, l.TLSKey)
		if certOK && keyOK && l.TLSCert != "" && l.TLSKey != "" {
			if _, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey); err != nil {
				ck.add(p("tls_cert"), "smtp_listener %q: tls_cert %s and tls_key %s are not a PEM certificate and its private key: %v", l.Name, l.TLSCert, l.TLSKey, err)
			}
		}
		ck.oneOf(p("tls_min_version"), string(l.TLSMinVersion), tlsVersionNames...)
		ck.atLeast(p("auth_fail_delay_after"), l.AuthFailDelayAfter, 0)
		ck.notNegative(p("auth_fail_delay"), l.AuthFailDelay)
		ck.atLeast(p("auth_fail_block_after"), l.AuthFailBlockAfter, 0)
		ck.positive(p("auth_fail_window"), l.AuthFailWindow)
		for _, m := range l.AuthMechanisms {
			ck.oneOf(p("auth_mechanisms"), m, "PLAIN", "LOGIN", "CRAM-MD5")
		}
		if l.MaxMessageSize <= 0 {
			ck.add(p("max_message_size"), "must be a positive size (such as \"20MiB\"), not %d", l.MaxMessageSize)
		}
		ck.atLeast(p("max_recipients"), l.MaxRecipients, 1)
		ck.oneOf(p("bare_lf"), l.BareLF, BareLFNormalize, BareLFReject)
		ck.atLeast(p("max_connections"), l.MaxConnections, 0)
		ck.atLeast(p("max_connections_per_ip"), l.MaxConnectionsPerIP, 0)
		ck.atLeast(p("max_bad_commands"), l.MaxBadCommands, 1)
		ck.positive(p("command_timeout"), l.CommandTimeout)
		ck.positive(p("data_timeout"), l.DataTimeout)
		ck.positive(p("idle_timeout"), l.IdleTimeout)
		ck.notNegative(p("session_timeout"), l.SessionTimeout)
		ck.positive(p("proxy_header_timeout"), l.ProxyHeaderTimeout)
		if l.ProxyProtocol && len(l.TrustedProxies) == 0 {
			ck.add(p("trusted_proxies"), "must list the proxies allowed to send PROXY headers when proxy_protocol = true (else every connection is refused)")
		}
	}

	users := map[string]bool{}
	for i, u := range c.SMTPUsers {
		p := func(k string) []string { return at("smtp_user", i, k) }
		switch {
		case u.Name == "":
			ck.add(at("smtp_user", i), "needs a name")
		case users[u.Name]:
			ck.add(p("name"), "user %q is defined twice", u.Name)
		case u.Name == handover.User:
			ck.add(p("name"), "%q is reserved for the nodes' handovers ([xfer] secret); choose another name", u.Name)
		}
		users[u.Name] = true
		switch {
		case u.Password == "" && u.PasswordHash == "":
			ck.add(at("smtp_user", i), "needs password or password_hash")
		case u.Password != "" && u.PasswordHash != "":
			ck.add(p("password_hash"), "set password or password_hash, not both")
		case u.PasswordHash != "":
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				ck.add(p("password_hash"), "is not a bcrypt hash ($2b$...): %v", err)
			}
		}
		tenantRef(p("tenant"), u.Tenant)
	}

	for i := range c.HTTPListeners {
		l := &c.HTTPListeners[i]
		p := func(k string) []string { return at("http_listener", i, k) }
		listen(p("listen"), l.Listen)
		if len(l.Services) == 0 {
			ck.add(p("services"), "must list at least one of %s", quoteList([]string{ServiceInject, ServiceAdmin, ServiceMetrics, ServiceConsole}))
		}
		for _, s := range l.Services {
			ck.oneOf(p("services"), s, ServiceInject, ServiceAdmin, ServiceMetrics, ServiceConsole)
		}
		if l.MaxMessageSize <= 0 {
			ck.add(p("max_message_size"), "must be a positive size (such as \"20MiB\"), not %d", l.MaxMessageSize)
		}
		if l.MaxInjectBytes <= 0 {
			ck.add(p("max_inject_bytes"), "must be a positive size (such as \"20MiB\"), not %d", l.MaxInjectBytes)
		}
		if l.ProxyProtocol && len(l.TrustedProxies) == 0 {
			ck.add(p("trusted_proxies"), "must list the proxies allowed to send PROXY headers when proxy_protocol = true (else every connection is refused)")
		}
	}

	keys := map[string]bool{}
	for i, k := range c.APIKeys {
		p := func(s string) []string { return at("api_key", i, s) }
		switch {
		case k.Key == "" && k.KeySHA256 == "":
			ck.add(at("api_key", i), "needs key or key_sha256")
		case k.Key != "" && k.KeySHA256 != "":
			ck.add(p("key_sha256"), "set key or key_sha256, not both")
		case k.KeySHA256 != "":
			if b, err := hex.DecodeString(k.KeySHA256); err != nil || len(b) != 32 {
				ck.add(p("key_sha256"), "must be 64 hex digits (the SHA-256 of the key)")
			}
		}
		id := k.Key + "/" + k.KeySHA256
		if keys[id] {
			ck.add(at("api_key", i), "the same key is listed twice")
		}
		keys[id] = true
		tenantRef(p("tenant"), k.Tenant)
		if k.Role != "" {
			ck.oneOf(p("role"), k.Role, RoleAdmin, RoleViewer)
			if k.Tenant != "" {
				ck.add(p("role"), "is for operator keys: a key bound to a tenant cannot log in to the console")
			}
		}
	}

	for i, ns := range c.Resolver.Nameservers {
		path := at("resolver", "nameservers")
		host, _, err := net.SplitHostPort(ns)
		if err != nil {
			ck.add(path, "%q (entry %d) is not ip:port", ns, i+1)
			continue
		}
		if _, err := netip.ParseAddr(host); err != nil {
			ck.add(path, "%q (entry %d) must name the server by IP address", ns, i+1)
		}
		ck.hostPort(path, ns, true, 1)
	}
	ck.positive(at("resolver", "timeout"), c.Resolver.Timeout)
	ck.oneOf(at("resolver", "dnssec"), c.Resolver.DNSSEC, ResolverDNSSECOff, ResolverDNSSECTrustAD)

	d := &c.Delivery
	if d.SMTPPort < 1 || d.SMTPPort > 65535 {
		ck.add(at("delivery", "smtp_port"), "must be a port number (1-65535), not %d", d.SMTPPort)
	}
	if d.RelayTo != "" {
		ck.hostPort(at("delivery", "relay_to"), d.RelayTo, true, 1)
	}
	c.checkRelayAuth(ck)
	c.checkCluster(ck)
	c.checkXfer(ck)
	c.checkFeedback(ck)
	c.checkEventSinks(ck)
	ck.positive(at("server", "drain_timeout"), c.Server.DrainTimeout)
	ck.oneOf(at("suppression", "mode"), c.Suppression.Mode, SuppressionRefuse, SuppressionDrop, SuppressionOff)
	ck.notNegative(at("suppression", "ttl"), c.Suppression.TTL)
	for _, name := range c.Suppression.BounceClasses {
		if _, ok := bounce.ParseClass(name); !ok {
			ck.add(at("suppression", "bounce_classes"), "unknown bounce class %q", name)
		}
	}
	ck.atLeast(at("delivery", "max_connections_per_domain"), d.MaxConnectionsPerDomain, 1)
	ck.atLeast(at("delivery", "max_deliveries_per_connection"), d.MaxDeliveriesPerConnection, 1)
	ck.positive(at("delivery", "connect_timeout"), d.ConnectTimeout)
	ck.positive(at("delivery", "command_timeout"), d.CommandTimeout)
	ck.positive(at("delivery", "data_timeout"), d.DataTimeout)
	ck.positive(at("delivery", "idle_timeout"), d.IdleTimeout)

	ck.oneOf(at("tls", "mode"), c.TLS.Mode, TLSOpportunistic, TLSOpportunisticInsecure, TLSRequired, TLSDisabled)
	ck.oneOf(at("tls", "min_version"), string(c.TLS.MinVersion), tlsVersionNames...)
	if f := c.TLS.CAFile; f != "" {
		if b, err := os.ReadFile(f); err != nil {
			ck.add(at("tls", "ca_file"), "cannot read %s", errText(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			ck.add(at("tls", "ca_file"), "%q holds no PEM certificate", f)
		}
	}
	if s := c.TLS.TLSRPTSender; s != "" {
		local, domain, ok := strings.Cut(s, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(s, " \t\r\n<>\"(),;:\\") || strings.Count(s, "@") != 1 {
			ck.add(at("tls", "tlsrpt_sender"), "%q is not an email address (want local@domain, without angle brackets)", s)
		}
	}
	for _, k := range []struct{ key, v string }{{"tlsrpt_organization", c.TLS.TLSRPTOrganization}, {"tlsrpt_contact", c.TLS.TLSRPTContact}} {
		if strings.ContainsAny(k.v, "\r\n") || len(k.v) > 256 {
			ck.add(at("tls", k.key), "must be one line of at most 256 characters")
		}
	}
	suites := cipherSuites()
	for _, name := range c.TLS.Ciphers {
		if _, ok := suites[name]; !ok {
			ck.add(at("tls", "ciphers"), "%q is not a cipher suite name known to crypto/tls (such as %q)", name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
		}
	}

	q := &c.Queue
	ck.atLeast(at("queue", "max_queue_depth"), q.MaxQueueDepth, 1)
	ck.positive(at("queue", "retry_interval"), q.RetryInterval)
	ck.positive(at("queue", "max_retry_interval"), q.MaxRetryInterval)
	ck.positive(at("queue", "max_retry_age"), q.MaxRetryAge)
	ck.notNegative(at("queue", "dead_letter_after"), q.DeadLetterAfter)
	ck.notNegative(at("queue", "delay_warning_after"), q.DelayWarningAfter)
	ck.notNegative(at("queue", "greylist_retry"), q.GreylistRetry)
	if q.MaxRetryInterval.Duration > 0 && q.MaxRetryInterval.Duration < q.RetryInterval.Duration {
		ck.add(at("queue", "max_retry_interval"), "(%s) must not be shorter than retry_interval (%s)", q.MaxRetryInterval.Duration, q.RetryInterval.Duration)
	}

	for _, h := range []struct{ key, v string }{
		{"tenant_header", c.Meta.TenantHeader},
		{"campaign_header", c.Meta.CampaignHeader},
		{"priority_header", c.Meta.PriorityHeader},
	} {
		if !validHeaderName(h.v) {
			ck.add(at("meta", h.key), "%q is not a header field name (RFC 5322 section 2.2)", h.v)
		}
	}

	signers := map[string]bool{}
	for i, k := range c.DKIM {
		p := func(s string) []string { return at("dkim", i, s) }
		if k.Domain == "" {
			ck.add(at("dkim", i), "needs a domain")
		}
		if k.Selector == "" {
			ck.add(at("dkim", i), "needs a selector")
		}
		if signers[k.Domain] {
			ck.add(p("domain"), "domain %q has two [[dkim]] keys", k.Domain)
		}
		signers[k.Domain] = true
		if k.KeyFile == "" {
			ck.add(at("dkim", i), "needs a key_file")
		} else if pemText, err := os.ReadFile(k.KeyFile); err != nil {
			ck.add(p("key_file"), "cannot read %s", errText(err))
		} else if b, _ := pem.Decode(pemText); b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			ck.add(p("key_file"), "%q holds no PEM private key", k.KeyFile)
		}
		hasFrom := false
		for _, h := range k.Headers {
			if !validHeaderName(h) || h == "" {
				ck.add(p("headers"), "%q is not a header field name", h)
			}
			hasFrom = hasFrom || strings.EqualFold(h, "From")
		}
		if !hasFrom {
			ck.add(p("headers"), "must include From (RFC 6376 section 5.4)")
		}
	}

	for name, t := range c.ShapingTables {
		p := func(k string) []string { return at("shaping", name, k) }
		if name != ShapingDefault && len(t.MXSuffix) == 0 && !validDomain(name) {
			ck.add(at("shaping", name), "%q is neither \"default\" nor a domain name", name)
		}
		for _, suf := range t.MXSuffix {
			if !validDomain(strings.TrimPrefix(strings.ToLower(suf), ".")) {
				ck.add(p("mx_suffix"), "%q is not a host name suffix such as \".google.com\"", suf)
			}
		}
		if t.ConnectionLimit != nil {
			ck.atLeast(p("connection_limit"), *t.ConnectionLimit, 1)
		}
		if t.MaxDeliveriesPerConnection != nil {
			ck.atLeast(p("max_deliveries_per_connection"), *t.MaxDeliveriesPerConnection, 1)
		}
		if t.LimitScope != nil {
			ck.oneOf(p("limit_scope"), *t.LimitScope, LimitScopeCluster, LimitScopeNode)
		}
		if v := t.BackoffOnDeferralRate; v != nil && (*v < 0 || *v > 1) {
			ck.add(p("backoff_on_deferral_rate"), "must be a share of the attempts between 0 (never) and 1, not %g", *v)
		}
		if t.BackoffWindow != nil {
			ck.positive(p("backoff_window"), *t.BackoffWindow)
		}
		if t.BackoffMinAttempts != nil {
			ck.atLeast(p("backoff_min_attempts"), *t.BackoffMinAttempts, 1)
		}
		if t.BackoffRetryAfter != nil {
			ck.notNegative(p("backoff_retry_after"), *t.BackoffRetryAfter)
		}
		if t.BackoffToNormalAfter != nil {
			ck.notNegative(p("backoff_to_normal_after"), *t.BackoffToNormalAfter)
		}
		if t.BackoffToNormalAfterDeliveries != nil {
			ck.atLeast(p("backoff_to_normal_after_deliveries"), *t.BackoffToNormalAfterDeliveries, 0)
		}
		if v := t.TuneTargetDeferral; v != nil && (*v <= 0 || *v >= 1) {
			ck.add(p("tune_target_deferral"), "must be a share of the attempts between 0 and 1 (0.02), not %g", *v)
		}
		if t.TuneWindow != nil {
			ck.positive(p("tune_window"), *t.TuneWindow)
		}
		if t.TuneMinAttempts != nil {
			ck.atLeast(p("tune_min_attempts"), *t.TuneMinAttempts, 1)
		}
		if v := t.TuneMinRate; v != nil && v.Unlimited() {
			ck.add(p("tune_min_rate"), "must be a rate such as \"1/s\", not unlimited")
		}
		if t.BackoffToNormalAfter != nil && t.BackoffToNormalAfter.Duration == 0 &&
			(t.BackoffToNormalAfterDeliveries == nil || *t.BackoffToNormalAfterDeliveries == 0) {
			ck.add(p("backoff_to_normal_after"), "0s needs backoff_to_normal_after_deliveries in the same table, or a site would stay in backoff for ever")
		}
	}
	c.validateDeliveryPolicy(ck)
	return ck.list
}

// validHeaderName reports whether s is empty or a header field name: printable
// US-ASCII except colon (RFC 5322 section 2.2).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

func validDomain(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c >= 0x80) {
			return false
		}
	}
	return true
}

func cipherSuites() map[string]uint16 {
	m := map[string]uint16{}
	for _, s := range tls.CipherSuites() {
		m[s.Name] = s.ID
	}
	for _, s := range tls.InsecureCipherSuites() {
		m[s.Name] = s.ID
	}
	return m
}

// CipherSuiteIDs returns ciphers as crypto/tls IDs; nil means Go's defaults.
func (t *TLS) CipherSuiteIDs() []uint16 {
	if len(t.Ciphers) == 0 {
		return nil
	}
	m := cipherSuites()
	ids := make([]uint16, 0, len(t.Ciphers))
	for _, n := range t.Ciphers {
		if id, ok := m[n]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// checkRelayAuth checks the smarthost logins of [delivery], [[tenant]] and
// [relay."DOMAIN"], and reads their relay_password_file (at load and at
// every reload).
func (c *Config) checkRelayAuth(ck *checker) {
	d := &c.Delivery
	c.relayPassword = c.checkSmarthost(ck, func(k string) []string { return at("delivery", k) }, d.RelayTo, d.RelayUser,
		d.RelayPassword, d.RelayPasswordFile, d.RelayTLS, true)
	c.relayPasswords = map[string]string{}
	for i, t := range c.Tenants {
		p := func(k string) []string { return at("tenant", i, k) }
		if t.RelayTo != "" {
			ck.hostPort(p("relay_to"), t.RelayTo, true, 1)
		}
		c.relayPasswords["tenant:"+t.Name] = c.checkSmarthost(ck, p, t.RelayTo, t.RelayUser, t.RelayPassword, t.RelayPasswordFile, t.RelayTLS, false)
	}
	for dom, r := range c.Relays {
		p := func(k string) []string { return at("relay", dom, k) }
		if r.RelayTo == "" {
			ck.add(p("relay_to"), "is required in [relay.%q] (the smarthost \"HOST:PORT\" for mail to %s)", dom, dom)
		} else {
			ck.hostPort(p("relay_to"), r.RelayTo, true, 1)
		}
		c.relayPasswords["domain:"+dom] = c.checkSmarthost(ck, p, r.RelayTo, r.RelayUser, r.RelayPassword, r.RelayPasswordFile, r.RelayTLS, false)
	}
}

// readFirstLine returns the first line of file (a password or secret
// file, what); a file that cannot be read, or whose first line is empty,
// is an error at path.
func readFirstLine(ck *checker, path []string, file, what string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		ck.add(path, "cannot read %s", errText(err))
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		ck.add(path, "%q is empty (want %s on its first line)", file, what)
	}
	return line
}

// checkSmarthost checks one smarthost login and returns the password read
// from passwordFile ("" without one).
func (c *Config) checkSmarthost(ck *checker, at func(string) []string, relayTo, user, password, passwordFile, relayTLS string, defaults bool) string {
	if relayTLS != "" || defaults {
		ck.oneOf(at("relay_tls"), relayTLS, RelayTLSStartTLS, RelayTLSImplicit, RelayTLSNone)
	}
	if password != "" && passwordFile != "" {
		ck.add(at("relay_password_file"), "set relay_password or relay_password_file, not both")
	}
	var fromFile string
	if passwordFile != "" && password == "" {
		fromFile = readFirstLine(ck, at("relay_password_file"), passwordFile, "the password")
	}
	hasPassword := password != "" || passwordFile != ""
	switch {
	case user != "" && !hasPassword:
		ck.add(at("relay_user"), "needs relay_password or relay_password_file")
	case user == "" && hasPassword:
		ck.add(at("relay_user"), "is empty, yet a relay password is set (write relay_user = \"NAME\")")
	}
	if relayTo == "" && (user != "" || hasPassword) {
		ck.add(at("relay_user"), "has no effect without relay_to (write relay_to = \"HOST:PORT\" of the smarthost)")
	}
	return fromFile
}
