package lua

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gannet/engine/config"

	glua "github.com/yuin/gopher-lua"
)

// special handles one key of a configuration table itself, instead of the
// field of the same TOML name.
type special func(v glua.LValue) error

// alias sets the field at ptr: a KumoMTA name for a field whose TOML name
// differs.
func alias(ptr any) special {
	return func(v glua.LValue) error { return setValue(reflect.ValueOf(ptr).Elem(), v, 0) }
}

// errNotYet is what a key Gannet does not implement yet answers.
func errNotYet(v glua.LValue) error { return fmt.Errorf("is not implemented by Gannet yet") }

// kumoModule builds the kumo table: the configuration functions and on.
func (ld *loader) kumoModule(L *glua.LState) *glua.LTable {
	m := L.NewTable()
	listener := ld.smtpListener
	for name, fn := range map[string]glua.LGFunction{
		"start_smtp_listener":    listener("kumo.start_smtp_listener"),
		"start_esmtp_listener":   listener("kumo.start_esmtp_listener"),
		"start_http_listener":    ld.httpListener,
		"configure_dkim_signing": ld.dkim,
		"configure_tls":          ld.tls,
		"configure_delivery":     ld.delivery,
		"configure_queue":        ld.queue,
		"configure_spool":        ld.spool,
		"define_spool":           ld.defineSpool,
		"configure_log":          ld.log,
		"configure_local_logs":   ld.localLogs,
		"define_tenant":          ld.tenant("kumo.define_tenant"),
		"configure_tenant":       ld.tenant("kumo.configure_tenant"),
	} {
		if ld.h != nil {
			// Run mode: the configuration was set at load.
			fn = noop
		}
		m.RawSetString(name, L.NewFunction(fn))
	}
	m.RawSetString("on", L.NewFunction(ld.on))
	ld.openHelpers(L, m)
	ld.openRuntime(L, m)
	return m
}

// noop is a configuration function in run mode.
func noop(*glua.LState) int { return 0 }

// on registers a hook. At load, "init" runs once the script has run and
// other events are remembered (Script.Events); in run mode init handlers
// are left out and the others recorded in the state's handler lists. An
// event Gannet does not run is accepted (KumoMTA has many) and ignored.
func (ld *loader) on(L *glua.LState) int {
	event := L.CheckString(1)
	fn := L.CheckFunction(2)
	switch {
	case ld.cur != nil:
		L.RaiseError("kumo.on: only at the script's top level, not in an event handler")
	case ld.h != nil:
		if event != "init" {
			ld.addHandler(event, fn)
		}
	case event == "init":
		ld.inits = append(ld.inits, fn)
	default:
		ld.events = append(ld.events, event)
	}
	return 0
}

// table returns the one table argument of the configuration function fn.
func table(L *glua.LState, fn string) *glua.LTable {
	if L.GetTop() != 1 {
		L.RaiseError("%s takes one table, not %d arguments", fn, L.GetTop())
	}
	t, ok := L.Get(1).(*glua.LTable)
	if !ok {
		L.RaiseError("%s takes a table, not a %s", fn, L.Get(1).Type())
	}
	return t
}

// mark records the line of the call that set the configuration part key.
func (ld *loader) mark(L *glua.LState, key string) {
	if src, line := callPos(L); src == ld.path {
		ld.lines[key] = line
	}
}

// raise raises msg as the error of the running configuration call, at the
// line of key in the call's table (the call's line when key is not found).
func (ld *loader) raise(L *glua.LState, key, msg string) {
	src, line := callPos(L)
	if src == ld.path {
		line = ld.keys.line(line, key)
	}
	L.Error(glua.LString(fmt.Sprintf("%s:%d: %s", src, line, msg)), 0)
}

// appendElem appends v to *list, which the first call replaces (the
// built-in elements go, as with an array of tables in TOML), and returns
// the element's key for lineOf.
func appendElem[T any](ld *loader, key string, list *[]T, v T) string {
	if !ld.replaced[key] {
		*list = nil
		ld.replaced[key] = true
	}
	*list = append(*list, v)
	return key + "[" + strconv.Itoa(len(*list)-1) + "]"
}

func (ld *loader) smtpListener(fn string) glua.LGFunction {
	return func(L *glua.LState) int {
		t := table(L, fn)
		l := ld.tmpl.SMTPListener()
		ld.decode(L, fn, t, &l, map[string]special{
			"tls": func(v glua.LValue) error {
				tt, ok := v.(*glua.LTable)
				if !ok {
					return fmt.Errorf("must be a table {cert_file, key_file}, not a %s", v.Type())
				}
				var tls struct {
					CertFile   string            `toml:"cert_file"`
					KeyFile    string            `toml:"key_file"`
					MinVersion config.TLSVersion `toml:"min_version"`
				}
				ld.decode(L, fn+": tls", tt, &tls, nil)
				l.TLSCert, l.TLSKey = tls.CertFile, tls.KeyFile
				if tls.MinVersion != "" {
					l.TLSMinVersion = tls.MinVersion
				}
				return nil
			},
			"tls_certificate":            alias(&l.TLSCert),
			"tls_private_key":            alias(&l.TLSKey),
			"max_recipients_per_message": alias(&l.MaxRecipients),
			"banner":                     errNotYet,
			"deferred_spool":             errNotYet,
			"trace_headers":              errNotYet,
			"via":                        errNotYet,
		})
		ld.mark(L, appendElem(ld, "smtp_listener", &ld.cfg.SMTPListeners, l))
		return 0
	}
}

func (ld *loader) httpListener(L *glua.LState) int {
	const fn = "kumo.start_http_listener"
	t := table(L, fn)
	l := ld.tmpl.HTTPListener()
	ld.decode(L, fn, t, &l, map[string]special{
		"use_tls":         errNotYet,
		"tls_certificate": errNotYet,
		"tls_private_key": errNotYet,
	})
	ld.mark(L, appendElem(ld, "http_listener", &ld.cfg.HTTPListeners, l))
	return 0
}

func (ld *loader) dkim(L *glua.LState) int {
	const fn = "kumo.configure_dkim_signing"
	t := table(L, fn)
	d := ld.tmpl.DKIM()
	ld.decode(L, fn, t, &d, nil)
	ld.mark(L, appendElem(ld, "dkim", &ld.cfg.DKIM, d))
	return 0
}

func (ld *loader) tls(L *glua.LState) int {
	const fn = "kumo.configure_tls"
	t := table(L, fn)
	c := &ld.cfg.TLS
	ld.decode(L, fn, t, c, map[string]special{
		"min_tls_version":       alias(&c.MinVersion),
		"prefer_server_ciphers": errNotYet,
	})
	ld.mark(L, "tls")
	return 0
}

func (ld *loader) delivery(L *glua.LState) int {
	const fn = "kumo.configure_delivery"
	t := table(L, fn)
	c := &ld.cfg.Delivery
	ld.decode(L, fn, t, c, map[string]special{
		// Gannet sizes its delivery workers itself; threads is checked
		// and accepted so that KumoMTA-style scripts load.
		"threads": func(v glua.LValue) error {
			var n int
			if err := setValue(reflect.ValueOf(&n).Elem(), v, 0); err != nil {
				return err
			}
			if n < 1 {
				return fmt.Errorf("must be at least 1, not %d", n)
			}
			return nil
		},
		"max_message_rate": rateField(&c.MaxMessageRate),
	})
	ld.mark(L, "delivery")
	return 0
}

// rateField sets a rate that may also be written as a number of messages per
// minute, as KumoMTA's guides write it.
func rateField(r *config.Rate) special {
	return func(v glua.LValue) error {
		return setValue(reflect.ValueOf(r).Elem(), v, time.Minute)
	}
}

func (ld *loader) queue(L *glua.LState) int {
	const fn = "kumo.configure_queue"
	t := table(L, fn)
	ld.decode(L, fn, t, &ld.cfg.Queue, map[string]special{
		// Gannet has no dead-letter queue: a message bounces at
		// max_retry_age. dead_letter_after is checked and accepted.
		"dead_letter_after": func(v glua.LValue) error {
			if s, ok := v.(glua.LString); ok {
				if n, err := strconv.Atoi(strings.TrimSuffix(string(s), "d")); err == nil && strings.HasSuffix(string(s), "d") && n >= 0 {
					return nil
				}
			}
			var d config.Duration
			return setValue(reflect.ValueOf(&d).Elem(), v, 0)
		},
	})
	ld.mark(L, "queue")
	return 0
}

func (ld *loader) spool(L *glua.LState) int {
	const fn = "kumo.configure_spool"
	ld.decode(L, fn, table(L, fn), &ld.cfg.Spool, nil)
	ld.mark(L, "spool")
	return 0
}

// defineSpool is KumoMTA's define_spool: the "data" spool sets Gannet's
// spool path; Gannet keeps the metadata in the same spool, so "meta" is
// accepted and has no path of its own.
func (ld *loader) defineSpool(L *glua.LState) int {
	const fn = "kumo.define_spool"
	t := table(L, fn)
	var s struct {
		Name string `toml:"name"`
		Path string `toml:"path"`
		Kind string `toml:"kind"`
	}
	ld.decode(L, fn, t, &s, nil)
	switch s.Name {
	case "data":
		ld.cfg.Spool.Path = s.Path
		ld.mark(L, "spool")
	case "meta":
	default:
		ld.raise(L, "name", fmt.Sprintf("%s: name %q is not one of \"data\", \"meta\"", fn, s.Name))
	}
	if s.Kind != "" && s.Kind != "RocksDB" {
		ld.raise(L, "kind", fmt.Sprintf("%s: kind %q is not implemented by Gannet yet (its spool is an LSM store like RocksDB)", fn, s.Kind))
	}
	return 0
}

func (ld *loader) log(L *glua.LState) int {
	const fn = "kumo.configure_log"
	ld.decode(L, fn, table(L, fn), &ld.cfg.Log, nil)
	ld.mark(L, "log")
	return 0
}

// localLogs is KumoMTA's configure_local_logs: log_dir is [log] path and
// max_segment_duration is max_file_age.
func (ld *loader) localLogs(L *glua.LState) int {
	const fn = "kumo.configure_local_logs"
	c := &ld.cfg.Log
	ld.decode(L, fn, table(L, fn), c, map[string]special{
		"log_dir":              alias(&c.Path),
		"max_segment_duration": alias(&c.MaxFileAge),
		"headers":              errNotYet,
		"meta":                 errNotYet,
		"per_record":           errNotYet,
	})
	ld.mark(L, "log")
	return 0
}

func (ld *loader) tenant(fn string) glua.LGFunction {
	return func(L *glua.LState) int {
		var t config.Tenant
		ld.decode(L, fn, table(L, fn), &t, map[string]special{
			"max_message_rate": rateField(&t.MaxMessageRate),
		})
		ld.mark(L, appendElem(ld, "tenant", &ld.cfg.Tenants, t))
		return 0
	}
}

// decode sets the fields of the struct dst from the table t by their TOML
// names, or through special for the keys it has; an unknown key, or a value
// of the wrong kind, raises a Lua error naming fn and the key.
func (ld *loader) decode(L *glua.LState, fn string, t *glua.LTable, dst any, specials map[string]special) {
	sv := reflect.ValueOf(dst).Elem()
	var bad error
	var badKey string
	t.ForEach(func(k, v glua.LValue) {
		if bad != nil {
			return
		}
		key, ok := k.(glua.LString)
		badKey = string(key)
		if !ok {
			bad = fmt.Errorf("%s: keys must be names, not %s", fn, k.Type())
			return
		}
		if sp, ok := specials[string(key)]; ok {
			if err := sp(v); err != nil {
				bad = fmt.Errorf("%s: %s: %w", fn, key, err)
			}
			return
		}
		f, ok := fieldByTag(sv, string(key))
		if !ok {
			bad = fmt.Errorf("%s: unknown key %q", fn, string(key))
			return
		}
		if err := setValue(f, v, 0); err != nil {
			bad = fmt.Errorf("%s: %s: %w", fn, key, err)
		}
	})
	if bad != nil {
		ld.raise(L, badKey, bad.Error())
	}
}

// fieldByTag returns the field of the struct sv whose TOML name is key.
func fieldByTag(sv reflect.Value, key string) (reflect.Value, bool) {
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		tag, _, _ := strings.Cut(st.Field(i).Tag.Get("toml"), ",")
		if tag == key && tag != "-" && st.Field(i).IsExported() {
			return sv.Field(i), true
		}
	}
	return reflect.Value{}, false
}

var (
	durationType = reflect.TypeOf(config.Duration{})
	sizeType     = reflect.TypeOf(config.Size(0))
	rateType     = reflect.TypeOf(config.Rate{})
)

// setValue sets f from the Lua value v. Durations are strings ("5m") or
// numbers of seconds; sizes strings ("20MiB") or numbers of bytes; rates
// strings ("100/s"), or numbers of events per ratePer when it is not 0. The
// text forms are parsed by the config types themselves.
func setValue(f reflect.Value, v glua.LValue, ratePer time.Duration) error {
	if n, ok := v.(glua.LNumber); ok {
		switch f.Type() {
		case durationType:
			secs := float64(n)
			if math.IsNaN(secs) || math.Abs(secs) > math.MaxInt64/float64(time.Second) {
				return fmt.Errorf("%v is not a duration in seconds", n)
			}
			f.Set(reflect.ValueOf(config.Duration{Duration: time.Duration(secs * float64(time.Second))}))
			return nil
		case sizeType:
			b, err := integer(n)
			if err != nil {
				return err
			}
			f.SetInt(b)
			return nil
		case rateType:
			if ratePer == 0 {
				return fmt.Errorf("write a rate as a string such as \"100/s\", not %v", n)
			}
			c, err := integer(n)
			if err != nil || c <= 0 {
				return fmt.Errorf("%v is not a positive whole number of messages", n)
			}
			f.Set(reflect.ValueOf(config.Rate{Count: c, Per: ratePer}))
			return nil
		}
	}
	if tu, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		s, ok := v.(glua.LString)
		if !ok {
			return fmt.Errorf("must be a string, not a %s", v.Type())
		}
		return tu.UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		s, ok := v.(glua.LString)
		if !ok {
			return fmt.Errorf("must be a string, not a %s", v.Type())
		}
		f.SetString(string(s))
	case reflect.Bool:
		b, ok := v.(glua.LBool)
		if !ok {
			return fmt.Errorf("must be true or false, not a %s", v.Type())
		}
		f.SetBool(bool(b))
	case reflect.Int, reflect.Int64:
		n, ok := v.(glua.LNumber)
		if !ok {
			return fmt.Errorf("must be a number, not a %s", v.Type())
		}
		i, err := integer(n)
		if err != nil {
			return err
		}
		f.SetInt(i)
	case reflect.Float64:
		n, ok := v.(glua.LNumber)
		if !ok {
			return fmt.Errorf("must be a number, not a %s", v.Type())
		}
		f.SetFloat(float64(n))
	case reflect.Slice:
		t, ok := v.(*glua.LTable)
		if !ok {
			return fmt.Errorf("must be a list, not a %s", v.Type())
		}
		n := t.Len()
		if count := tableCount(t); count != n {
			return fmt.Errorf("must be a list {a, b, …}, not a table with other keys")
		}
		out := reflect.MakeSlice(f.Type(), n, n)
		for i := 0; i < n; i++ {
			if err := setValue(out.Index(i), t.RawGetInt(i+1), ratePer); err != nil {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
		}
		f.Set(out)
	default:
		return fmt.Errorf("cannot be set from Lua yet")
	}
	return nil
}

// tableCount returns the number of keys of t.
func tableCount(t *glua.LTable) int {
	n := 0
	t.ForEach(func(glua.LValue, glua.LValue) { n++ })
	return n
}

// integer returns n as an int64 when it is a whole number.
func integer(n glua.LNumber) (int64, error) {
	f := float64(n)
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%v is not a whole number", n)
	}
	return int64(f), nil
}
