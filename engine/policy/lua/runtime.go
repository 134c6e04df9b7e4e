package lua

// The run-time functions of a script: the kumo.* and global functions its
// event handlers call, and KumoMTA's message object.

import (
	"fmt"
	"log/slog"
	"math"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gannet/engine/config"
	"gannet/engine/dkim"
	"gannet/engine/policy"
	"gannet/mailaddr"
	"gannet/msgheader"
	"gannet/smtpwire"

	glua "github.com/yuin/gopher-lua"
)

// openRuntime sets the run-time functions of the kumo table m. They exist
// at load too, where those that act on a call raise an error that says
// where they may be called.
func (ld *loader) openRuntime(L *glua.LState, m *glua.LTable) {
	for name, fn := range map[string]glua.LGFunction{
		"limit_sending":      ld.limitSending,
		"sign_dkim":          ld.signDKIM,
		"set_queue_priority": ld.setQueuePriority,
		"add_header":         ld.addHeader,
		"remove_header":      ld.removeHeader,
		"set_tenant":         ld.setRouting("kumo.set_tenant"),
		"set_campaign":       ld.setRouting("kumo.set_campaign"),
		"reject":             ld.reject,
		"suspend":            ld.admin("kumo.suspend"),
		"bounce":             ld.admin("kumo.bounce"),
		"make_queue_config":  ld.makeQueueConfig,
		"make_egress_path":   ld.makeEgressPath,
	} {
		m.RawSetString(name, L.NewFunction(fn))
	}
	d := L.NewTable()
	d.RawSetString("rsa_sha256_signer", L.NewFunction(ld.signer("kumo.dkim.rsa_sha256_signer")))
	d.RawSetString("ed25519_signer", L.NewFunction(ld.signer("kumo.dkim.ed25519_signer")))
	m.RawSetString("dkim", d)
}

// openGlobals sets the global run-time functions.
func (ld *loader) openGlobals(L *glua.LState) {
	L.SetGlobal("log_info", L.NewFunction(ld.logAt("log_info", slog.LevelInfo)))
	L.SetGlobal("log_warn", L.NewFunction(ld.logAt("log_warn", slog.LevelWarn)))
	L.SetGlobal("log_error", L.NewFunction(ld.logAt("log_error", slog.LevelError)))
	L.SetGlobal("adjust_domain_rate", L.NewFunction(ld.adjustDomainRate))
	L.SetGlobal("increment_campaign_metric", L.NewFunction(ld.campaignMetric))
}

// in returns the call in progress when it is of one of events (of any
// event when none are given), and raises the error that says where fn may
// be called otherwise.
func (ld *loader) in(L *glua.LState, fn string, events ...string) *call {
	c := ld.cur
	if c != nil {
		if len(events) == 0 {
			return c
		}
		for _, ev := range events {
			if c.event == ev {
				return c
			}
		}
	}
	if len(events) == 0 {
		L.RaiseError("%s: only in event handlers (kumo.on), not at load", fn)
	}
	L.RaiseError("%s: only in %s", fn, strings.Join(events, " and "))
	return nil
}

// scriptPos is "file:line" of the Lua code calling the running function.
func scriptPos(L *glua.LState) string {
	file, line := callPos(L)
	return file + ":" + strconv.Itoa(line)
}

// logAt is log_info, log_warn, log_error(msg, key, value, …): msg with
// the event, the script's file:line and the key-value pairs that follow.
func (ld *loader) logAt(fn string, level slog.Level) glua.LGFunction {
	return func(L *glua.LState) int {
		c := ld.in(L, fn)
		msg := L.CheckAny(1).String()
		args := make([]any, 0, 4+L.GetTop()-1)
		args = append(args, "event", c.event, "script", scriptPos(L))
		for i := 2; i <= L.GetTop(); i++ {
			args = append(args, L.Get(i).String())
		}
		ld.h.log.Log(L.Context(), level, msg, args...)
		return 0
	}
}

func (ld *loader) adjustDomainRate(L *glua.LState) int {
	const fn = "adjust_domain_rate"
	ld.in(L, fn)
	domain := L.CheckString(1)
	delta := float64(L.CheckNumber(2))
	if math.IsNaN(delta) || delta <= -1 || delta > 10 {
		L.RaiseError("%s: delta %v is not in (-1, 10]", fn, delta)
	}
	ld.h.host.AdjustDomainRate(mailaddr.CanonicalDomain(domain), delta)
	return 0
}

func (ld *loader) campaignMetric(L *glua.LState) int {
	ld.in(L, "increment_campaign_metric")
	ld.h.host.CampaignEvent(L.CheckString(1), L.CheckString(2))
	return 0
}

var perNames = map[string]time.Duration{
	"second": time.Second, "s": time.Second, "sec": time.Second,
	"minute": time.Minute, "m": time.Minute, "min": time.Minute,
	"hour": time.Hour, "h": time.Hour, "hr": time.Hour,
	"day": 24 * time.Hour, "d": 24 * time.Hour,
}

// limitSending is kumo.limit_sending(tenant, n, {per = "minute"}): n
// messages per second (default), minute, hour or day.
func (ld *loader) limitSending(L *glua.LState) int {
	const fn = "kumo.limit_sending"
	ld.in(L, fn)
	tenant := L.CheckString(1)
	n := float64(L.CheckNumber(2))
	if math.IsNaN(n) || math.IsInf(n, 0) || n <= 0 {
		L.RaiseError("%s: the rate must be a positive number, not %v", fn, n)
	}
	per := time.Second
	if L.GetTop() >= 3 && L.Get(3) != glua.LNil {
		t := L.CheckTable(3)
		var bad string
		t.ForEach(func(k, v glua.LValue) {
			if k.String() != "per" {
				bad = fmt.Sprintf("unknown key %q (per)", k.String())
				return
			}
			d, ok := perNames[v.String()]
			if !ok {
				bad = fmt.Sprintf("per must be \"second\", \"minute\", \"hour\" or \"day\", not %q", v.String())
				return
			}
			per = d
		})
		if bad != "" {
			L.RaiseError("%s: %s", fn, bad)
		}
	}
	ld.h.host.LimitSending(tenant, n/per.Seconds())
	return 0
}

// stringList reads a list of strings.
func stringList(v glua.LValue) ([]string, error) {
	t, ok := v.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("must be a list of strings, not a %s", v.Type())
	}
	n := t.Len()
	if tableCount(t) != n {
		return nil, fmt.Errorf("must be a list {a, b, …}, not a table with other keys")
	}
	out := make([]string, n)
	for i := range out {
		s, ok := t.RawGetInt(i + 1).(glua.LString)
		if !ok {
			return nil, fmt.Errorf("item %d must be a string", i+1)
		}
		out[i] = string(s)
	}
	return out, nil
}

// signDKIM is kumo.sign_dkim(domain, selector, key_file[, headers]): in
// smtp_server_greeting, every message of the session is signed with the
// key; in smtp_message_received, this message.
func (ld *loader) signDKIM(L *glua.LState) int {
	const fn = "kumo.sign_dkim"
	c := ld.in(L, fn, EventGreeting, EventMessage)
	k := dkim.KeyConfig{Domain: L.CheckString(1), Selector: L.CheckString(2), KeyFile: L.CheckString(3)}
	if L.GetTop() >= 4 && L.Get(4) != glua.LNil {
		hs, err := stringList(L.Get(4))
		if err != nil {
			L.RaiseError("%s: headers: %v", fn, err)
		}
		k.Headers = hs
	}
	if err := checkKey(k); err != nil {
		L.RaiseError("%s: %v", fn, err)
	}
	c.addKey(k)
	return 0
}

// checkKey checks what a script gave for a DKIM key.
func checkKey(k dkim.KeyConfig) error {
	switch {
	case k.Domain == "":
		return fmt.Errorf("no domain")
	case k.Selector == "":
		return fmt.Errorf("no selector")
	case k.KeyFile == "":
		return fmt.Errorf("no key file")
	}
	for _, h := range k.Headers {
		if !isFieldName(h) {
			return fmt.Errorf("%q is not a header field name", h)
		}
	}
	return nil
}

// addKey adds a DKIM key to what the call decides.
func (c *call) addKey(k dkim.KeyConfig) {
	if c.greeting != nil {
		c.greeting.DKIM = append(c.greeting.DKIM, k)
	} else {
		c.dec.DKIMKeys = append(c.dec.DKIMKeys, k)
	}
}

// signer is what kumo.dkim.rsa_sha256_signer and ed25519_signer return:
// a key msg:dkim_sign adds to the decision (the engine keeps the signers,
// so no key file is read per message).
type signer struct{ key dkim.KeyConfig }

// signer is kumo.dkim.*_signer{domain, selector, headers, key}: key is a
// key file name or {key_file = …}. The key's type is the key file's.
func (ld *loader) signer(fn string) glua.LGFunction {
	return func(L *glua.LState) int {
		t := table(L, fn)
		var k dkim.KeyConfig
		var bad error
		t.ForEach(func(kk, v glua.LValue) {
			if bad != nil {
				return
			}
			switch kk.String() {
			case "domain":
				k.Domain = v.String()
			case "selector":
				k.Selector = v.String()
			case "headers":
				k.Headers, bad = stringList(v)
			case "key":
				switch v := v.(type) {
				case glua.LString:
					k.KeyFile = string(v)
				case *glua.LTable:
					kf, ok := v.RawGetString("key_file").(glua.LString)
					if !ok || tableCount(v) != 1 {
						bad = fmt.Errorf("key: must be a file name or {key_file = …}")
					}
					k.KeyFile = string(kf)
				default:
					bad = fmt.Errorf("key: must be a file name or {key_file = …}, not a %s", v.Type())
				}
			default:
				bad = fmt.Errorf("unknown key %q (domain, selector, headers, key)", kk.String())
			}
		})
		if bad == nil {
			bad = checkKey(k)
		}
		if bad != nil {
			L.RaiseError("%s: %v", fn, bad)
		}
		ud := L.NewUserData()
		ud.Value = &signer{key: k}
		L.Push(ud)
		return 1
	}
}

// setQueuePriority is kumo.set_queue_priority("high" | "normal" | "bulk"
// | 0 | 1).
func (ld *loader) setQueuePriority(L *glua.LState) int {
	const fn = "kumo.set_queue_priority"
	c := ld.in(L, fn, EventMessage)
	switch v := L.CheckAny(1); v {
	case glua.LString("high"), glua.LNumber(1):
		c.dec.Priority = 1
	case glua.LString("normal"), glua.LString("bulk"), glua.LNumber(0):
		c.dec.Priority = 0
	default:
		L.RaiseError("%s: %s is not \"high\", \"normal\", \"bulk\", 0 or 1", fn, v)
	}
	return 0
}

// isFieldName reports RFC 5322 §3.6.8 field-name: printable US-ASCII
// other than the colon, at least one.
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// headerEdit checks and adds one header edit to the call's decision.
func headerEdit(L *glua.LState, fn string, c *call, kind policy.EditKind, name, value string) {
	if !isFieldName(name) {
		L.RaiseError("%s: %q is not a header field name (printable ASCII, no colon or space)", fn, name)
	}
	if strings.ContainsAny(value, "\r\n") {
		L.RaiseError("%s: %s: the value holds a line end", fn, name)
	}
	c.dec.Edits = append(c.dec.Edits, policy.HeaderEdit{Kind: kind, Name: name, Value: value})
}

// addHeader is kumo.add_header(name, value): the field is added at the end
// of the header section.
func (ld *loader) addHeader(L *glua.LState) int {
	const fn = "kumo.add_header"
	c := ld.in(L, fn, EventMessage)
	headerEdit(L, fn, c, policy.Add, L.CheckString(1), L.CheckString(2))
	return 0
}

// removeHeader is kumo.remove_header(name): every field of the name goes.
func (ld *loader) removeHeader(L *glua.LState) int {
	const fn = "kumo.remove_header"
	c := ld.in(L, fn, EventMessage)
	headerEdit(L, fn, c, policy.Remove, L.CheckString(1), "")
	return 0
}

func (ld *loader) setRouting(fn string) glua.LGFunction {
	return func(L *glua.LState) int {
		c := ld.in(L, fn, EventMessage)
		v := L.CheckString(1)
		if fn == "kumo.set_tenant" {
			c.dec.Tenant = v
		} else {
			c.dec.Campaign = v
		}
		return 0
	}
}

var enhancedRe = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3})\s+`)

// rejectReply is the reply of kumo.reject(code, text).
func rejectReply(code int, text string) (smtpwire.Reply, error) {
	if code < 400 || code > 599 {
		return smtpwire.Reply{}, fmt.Errorf("code %d is not a 4xx or 5xx reply code", code)
	}
	r := smtpwire.Reply{Code: code, Enhanced: "5.7.1"}
	if code < 500 {
		r.Enhanced = "4.7.1"
	}
	if m := enhancedRe.FindStringSubmatch(text); m != nil {
		if m[1][0] != byte('0'+code/100) {
			return smtpwire.Reply{}, fmt.Errorf("enhanced code %s does not match reply code %d", m[1], code)
		}
		r.Enhanced = m[1]
		text = text[len(m[0]):]
	}
	r.Lines = []string{strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' {
			return ' '
		}
		return c
	}, text)}
	return r, nil
}

// reject is kumo.reject(code, text): the greeting's session or the
// message is refused with the reply; the handler ends there.
func (ld *loader) reject(L *glua.LState) int {
	const fn = "kumo.reject"
	c := ld.in(L, fn, EventGreeting, EventMessage)
	code, err := integer(L.CheckNumber(1))
	text := L.OptString(2, "rejected by policy")
	var r smtpwire.Reply
	if err == nil {
		r, err = rejectReply(int(code), text)
	}
	if err != nil {
		L.RaiseError("%s: %v", fn, err)
	}
	c.reject = &r
	L.RaiseError("%s: %s", fn, r.String())
	return 0
}

// admin is kumo.suspend{domain, tenant, campaign, site, reason, duration}
// and kumo.bounce{…}: the admin API's suspend and bounce.
func (ld *loader) admin(fn string) glua.LGFunction {
	return func(L *glua.LState) int {
		ld.in(L, fn)
		t := table(L, fn)
		var sel Selector
		var reason string
		var d time.Duration
		var bad error
		t.ForEach(func(k, v glua.LValue) {
			if bad != nil {
				return
			}
			s, isStr := v.(glua.LString)
			switch key := k.String(); key {
			case "domain", "tenant", "campaign", "site", "reason":
				if !isStr {
					bad = fmt.Errorf("%s: must be a string, not a %s", key, v.Type())
					return
				}
				switch key {
				case "domain":
					sel.Domain = mailaddr.CanonicalDomain(string(s))
				case "tenant":
					sel.Tenant = string(s)
				case "campaign":
					sel.Campaign = string(s)
				case "site":
					sel.Site = string(s)
				default:
					reason = string(s)
				}
			case "duration":
				var err error
				if d, err = durationValue(v); err != nil || d < 0 {
					bad = fmt.Errorf("duration: must be a duration (\"1h\" or seconds), not %s", v)
				}
			default:
				bad = fmt.Errorf("unknown key %q (domain, tenant, campaign, site, reason, duration)", key)
			}
		})
		if bad != nil {
			L.RaiseError("%s: %v", fn, bad)
		}
		if fn == "kumo.suspend" {
			ld.h.host.Suspend(sel, reason, d)
		} else {
			ld.h.host.Bounce(sel, reason, d)
		}
		return 0
	}
}

// makeQueueConfig is kumo.make_queue_config{retry_interval,
// max_retry_interval, max_age, egress_pool}: get_queue_config's answer.
func (ld *loader) makeQueueConfig(L *glua.LState) int {
	const fn = "kumo.make_queue_config"
	var f struct {
		RetryInterval    config.Duration `toml:"retry_interval"`
		MaxRetryInterval config.Duration `toml:"max_retry_interval"`
		MaxAge           config.Duration `toml:"max_age"`
		EgressPool       string          `toml:"egress_pool"`
	}
	ld.decode(L, fn, table(L, fn), &f, nil)
	ud := L.NewUserData()
	ud.Value = &QueueConfig{RetryInterval: f.RetryInterval.Duration, MaxRetryInterval: f.MaxRetryInterval.Duration, MaxAge: f.MaxAge.Duration, EgressPool: f.EgressPool}
	L.Push(ud)
	return 1
}

var tlsModes = []string{"Opportunistic", "OpportunisticInsecure", "Required", "RequiredInsecure", "Disabled"}

// makeEgressPath is kumo.make_egress_path{connection_limit,
// max_message_rate, max_deliveries_per_connection, enable_tls, smtp_port}:
// get_egress_path_config's answer. max_message_rate is read as
// kumo.configure_delivery's ("100/s", or a number per minute).
func (ld *loader) makeEgressPath(L *glua.LState) int {
	const fn = "kumo.make_egress_path"
	var f struct {
		ConnectionLimit            int    `toml:"connection_limit"`
		MaxDeliveriesPerConnection int    `toml:"max_deliveries_per_connection"`
		EnableTLS                  string `toml:"enable_tls"`
		SMTPPort                   int    `toml:"smtp_port"`
	}
	var rate config.Rate
	ld.decode(L, fn, table(L, fn), &f, map[string]special{
		"max_message_rate": rateField(&rate),
		"enable_tls": func(v glua.LValue) error {
			for _, m := range tlsModes {
				if v.String() == m {
					f.EnableTLS = m
					return nil
				}
			}
			return fmt.Errorf("must be one of %s, not %s", strings.Join(tlsModes, ", "), v)
		},
	})
	if f.ConnectionLimit < 0 || f.MaxDeliveriesPerConnection < 0 || f.SMTPPort < 0 || f.SMTPPort > 65535 {
		L.RaiseError("%s: connection_limit, max_deliveries_per_connection and smtp_port must not be negative (smtp_port at most 65535)", fn)
	}
	ep := &EgressPath{ConnectionLimit: f.ConnectionLimit, MaxDeliveriesPerConnection: f.MaxDeliveriesPerConnection, EnableTLS: f.EnableTLS, SMTPPort: f.SMTPPort}
	if !rate.Unlimited() {
		ep.MaxMessageRate = rate.PerSecond()
	}
	ud := L.NewUserData()
	ud.Value = ep
	L.Push(ud)
	return 1
}

// newMetatables builds the state's shared metatables: headers tables
// (case-insensitive lookups), KumoMTA's message object and addresses.
func (ld *loader) newMetatables(L *glua.LState) {
	ld.headerMeta = L.NewTable()
	ld.headerMeta.RawSetString("__index", L.NewFunction(headerIndex))
	ld.viewMeta = ld.newViewMeta(L)
	ld.addrMeta = L.NewTable()
	ld.addrMeta.RawSetString("__tostring", L.NewFunction(func(L *glua.LState) int {
		L.Push(L.CheckTable(1).RawGetString("email"))
		return 1
	}))
	methods := L.NewTable()
	for name, fn := range map[string]glua.LGFunction{
		"get_meta":                     ld.getMeta,
		"set_meta":                     ld.setMeta,
		"sender":                       ld.msgSender,
		"recipient":                    ld.msgRecipient,
		"get_first_named_header_value": ld.msgHeader,
		"append_header":                ld.msgEdit("msg:append_header", policy.Add),
		"prepend_header":               ld.msgEdit("msg:prepend_header", policy.Prepend),
		"remove_all_named_headers":     ld.msgEdit("msg:remove_all_named_headers", policy.Remove),
		"from_header":                  ld.msgFrom,
		"get_data":                     ld.msgData,
		"dkim_sign":                    ld.msgSign,
	} {
		methods.RawSetString(name, L.NewFunction(fn))
	}
	ld.msgMeta = L.NewTable()
	ld.msgMeta.RawSetString("__index", methods)
	ld.msgMeta.RawSetString("__tostring", L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString("message"))
		return 1
	}))
}

// headerIndex is the __index of a headers table: the field whose name
// equals the key without regard to case.
func headerIndex(L *glua.LState) int {
	t := L.CheckTable(1)
	k, ok := L.Get(2).(glua.LString)
	if !ok {
		return 0
	}
	for key, v := t.Next(glua.LNil); key != glua.LNil; key, v = t.Next(key) {
		if s, ok := key.(glua.LString); ok && strings.EqualFold(string(s), string(k)) {
			L.Push(v)
			return 1
		}
	}
	return 0
}

// msgCall returns the call of the message object, which must be the call
// in progress.
func (ld *loader) msgCall(L *glua.LState, fn string) *call {
	ud := L.CheckUserData(1)
	c, ok := ud.Value.(*call)
	if !ok {
		L.ArgError(1, fn+": not a message")
	}
	if ld.cur != c {
		L.RaiseError("%s: the message object is used outside its smtp_message_received call", fn)
	}
	return c
}

// getMeta is msg:get_meta(key): tenant and campaign are the decision's;
// other keys (queue, routing_domain, …) what set_meta set in this call.
func (ld *loader) getMeta(L *glua.LState) int {
	c := ld.msgCall(L, "msg:get_meta")
	switch k := L.CheckString(2); k {
	case "tenant":
		L.Push(optString(c.dec.Tenant))
	case "campaign":
		L.Push(optString(c.dec.Campaign))
	default:
		if v, ok := c.meta[k]; ok {
			L.Push(v)
		} else {
			L.Push(glua.LNil)
		}
	}
	return 1
}

// setMeta is msg:set_meta(key, value): tenant and campaign set the
// message's routing; other keys are kept for get_meta in this call.
// Gannet's queues are (tenant, campaign, domain): a queue name is kept but
// does not route the message, and the "null" queue is not implemented.
func (ld *loader) setMeta(L *glua.LState) int {
	const fn = "msg:set_meta"
	c := ld.msgCall(L, fn)
	k := L.CheckString(2)
	v := L.CheckAny(3)
	switch k {
	case "tenant", "campaign":
		s, ok := v.(glua.LString)
		if !ok && v != glua.LNil {
			L.RaiseError("%s: %s must be a string, not a %s", fn, k, v.Type())
		}
		if k == "tenant" {
			c.dec.Tenant = string(s)
		} else {
			c.dec.Campaign = string(s)
		}
	case "queue":
		if v == glua.LString("null") {
			L.RaiseError("%s: the null queue (discarding the message) is not implemented by Gannet yet", fn)
		}
		fallthrough
	default:
		if _, err := toGo(L.Context(), v); err != nil {
			L.RaiseError("%s: %s: %v", fn, k, err)
		}
		if c.meta == nil {
			c.meta = map[string]glua.LValue{}
		}
		c.meta[k] = v
	}
	return 0
}

// address is an address object: {user, domain, email}, tostring the
// email.
func (ld *loader) address(L *glua.LState, addr string) glua.LValue {
	user, domain := mailaddr.Split(addr)
	t := L.CreateTable(0, 3)
	t.RawSetString("user", glua.LString(user))
	t.RawSetString("domain", glua.LString(domain))
	t.RawSetString("email", glua.LString(addr))
	t.Metatable = ld.addrMeta
	return t
}

func (ld *loader) msgSender(L *glua.LState) int {
	c := ld.msgCall(L, "msg:sender")
	L.Push(ld.address(L, c.msg.Sender))
	return 1
}

// msgRecipient is msg:recipient(): the first envelope recipient (KumoMTA's
// messages have one).
func (ld *loader) msgRecipient(L *glua.LState) int {
	c := ld.msgCall(L, "msg:recipient")
	if len(c.msg.Recipients) == 0 {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(ld.address(L, c.msg.Recipients[0]))
	return 1
}

// msgHeader is msg:get_first_named_header_value(name): the unfolded value
// of the received message's first field of the name, or nil.
func (ld *loader) msgHeader(L *glua.LState) int {
	c := ld.msgCall(L, "msg:get_first_named_header_value")
	if v, ok := msgheader.Get(c.msg.Body, L.CheckString(2)); ok {
		L.Push(glua.LString(v))
	} else {
		L.Push(glua.LNil)
	}
	return 1
}

func (ld *loader) msgEdit(fn string, kind policy.EditKind) glua.LGFunction {
	return func(L *glua.LState) int {
		c := ld.msgCall(L, fn)
		value := ""
		if kind != policy.Remove {
			value = L.CheckString(3)
		}
		headerEdit(L, fn, c, kind, L.CheckString(2), value)
		return 0
	}
}

// msgFrom is msg:from_header(): the address of the From field
// ({user, domain, email, name}), nil when there is none or it does not
// parse.
func (ld *loader) msgFrom(L *glua.LState) int {
	c := ld.msgCall(L, "msg:from_header")
	v, ok := msgheader.Get(c.msg.Body, "From")
	if !ok {
		L.Push(glua.LNil)
		return 1
	}
	addrs, err := mail.ParseAddressList(v)
	if err != nil || len(addrs) == 0 {
		L.Push(glua.LNil)
		return 1
	}
	t := ld.address(L, addrs[0].Address).(*glua.LTable)
	t.RawSetString("name", glua.LString(addrs[0].Name))
	L.Push(t)
	return 1
}

func (ld *loader) msgData(L *glua.LState) int {
	c := ld.msgCall(L, "msg:get_data")
	L.Push(glua.LString(c.msg.Body))
	return 1
}

// msgSign is msg:dkim_sign(signer): the message is signed with the
// signer's key too.
func (ld *loader) msgSign(L *glua.LState) int {
	const fn = "msg:dkim_sign"
	c := ld.msgCall(L, fn)
	s, ok := userValue[*signer](L.Get(2))
	if !ok {
		L.RaiseError("%s: takes a signer of kumo.dkim.rsa_sha256_signer or ed25519_signer, not a %s", fn, L.Get(2).Type())
	}
	c.addKey(s.key)
	return 0
}
