package config

import (
	"bytes"
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Redacted is written in place of a secret by Show.
const Redacted = "<redacted>"

// Show writes c as TOML, as `gannet config show` prints it: every key with
// its effective value (after the built-in defaults, derived values and a
// policy script's overrides), or, with changed, only the keys whose value
// differs from the built-in configuration (as Postfix's `postconf -n`).
// Either output, loaded as a file, gives the same configuration again
// (secrets aside). Secrets (passwords, password hashes, API keys and their
// hashes: fields tagged secret:"true") are written as "<redacted>".
func Show(c *Config, changed bool) []byte {
	def := Default()
	tmpl := finishedTemplates()
	var top, tables bytes.Buffer
	cv, dv := reflect.ValueOf(c).Elem(), reflect.ValueOf(def).Elem()
	typ := cv.Type()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name := f.Tag.Get("toml")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fv, dfv := cv.Field(i), dv.Field(i)
		same := reflect.DeepEqual(fv.Interface(), dfv.Interface())
		if changed && same {
			continue
		}
		path := []string{name}
		switch kindOf(f.Type) {
		case kindTable:
			var body bytes.Buffer
			writeKeys(&body, fv, dfv, changed)
			if body.Len() > 0 || !changed {
				fmt.Fprintf(&tables, "\n[%s]\n", displayPath(path))
				tables.Write(body.Bytes())
			}
		case kindTableArray:
			if fv.Len() == 0 {
				if dfv.Len() > 0 {
					fmt.Fprintf(&top, "%s = []\n", displayPath(path))
				}
				continue
			}
			base := tmpl[name]
			if !base.IsValid() {
				base = reflect.New(f.Type.Elem()).Elem()
			}
			for j := 0; j < fv.Len(); j++ {
				fmt.Fprintf(&tables, "\n[[%s]]\n", displayPath(path))
				writeKeys(&tables, fv.Index(j), base, changed)
			}
		case kindTableMap:
			keys := make([]string, 0, fv.Len())
			for _, k := range fv.MapKeys() {
				keys = append(keys, k.String())
			}
			sort.Strings(keys)
			for _, k := range keys {
				ev := fv.MapIndex(reflect.ValueOf(k))
				base := reflect.Value{}
				if dfv.Len() > 0 {
					base = dfv.MapIndex(reflect.ValueOf(k))
				}
				if changed && base.IsValid() && reflect.DeepEqual(ev.Interface(), base.Interface()) {
					continue
				}
				if !base.IsValid() {
					base = reflect.New(ev.Type()).Elem()
				}
				fmt.Fprintf(&tables, "\n[%s]\n", displayPath(append(path, k)))
				writeKeys(&tables, ev, base, changed)
			}
		default:
			fmt.Fprintf(&top, "%s = %s\n", displayPath(path), tomlValue(fv, false))
		}
	}
	var out bytes.Buffer
	file := c.File
	if file == "" {
		file = "the built-in configuration"
	}
	if changed {
		fmt.Fprintf(&out, "# %s: the keys whose value differs from the built-in configuration\n", file)
	} else {
		fmt.Fprintf(&out, "# %s: every key, with the value in effect\n", file)
	}
	if c.PolicyScript != nil {
		out.WriteString("# (after the policy script's overrides)\n")
	}
	out.WriteString("# Secrets are shown as \"" + Redacted + "\".\n")
	if top.Len() > 0 {
		out.WriteByte('\n')
		out.Write(top.Bytes())
	}
	out.Write(tables.Bytes())
	return out.Bytes()
}

// finishedTemplates returns the values new array elements start from,
// finished as a loaded file's are (host names filled in), by TOML name.
func finishedTemplates() map[string]reflect.Value {
	c, t := Base()
	c.SMTPListeners = []SMTPListener{t.SMTPListener()}
	c.HTTPListeners = []HTTPListener{t.HTTPListener()}
	c.DKIM = []DKIM{t.DKIM()}
	c.finish()
	return map[string]reflect.Value{
		"smtp_listener": reflect.ValueOf(c.SMTPListeners[0]),
		"http_listener": reflect.ValueOf(c.HTTPListeners[0]),
		"dkim":          reflect.ValueOf(c.DKIM[0]),
	}
}

// writeKeys writes KEY = VALUE for each field of struct v; with changed,
// only those that differ from base's. Unset optional keys (nil pointers)
// are left out.
func writeKeys(b *bytes.Buffer, v, base reflect.Value, changed bool) {
	typ := v.Type()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name := f.Tag.Get("toml")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Pointer && fv.IsNil() {
			continue
		}
		if changed && reflect.DeepEqual(fv.Interface(), base.Field(i).Interface()) {
			continue
		}
		fmt.Fprintf(b, "%s = %s\n", displayPath([]string{name}), tomlValue(fv, f.Tag.Get("secret") == "true"))
	}
}

// tomlValue formats v as a TOML value.
func tomlValue(v reflect.Value, secret bool) string {
	if secret && v.Kind() == reflect.String && v.String() != "" {
		return tomlString(Redacted)
	}
	if d, ok := v.Interface().(Duration); ok {
		return tomlString(shortDuration(d.Duration))
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok && v.Kind() != reflect.Pointer {
		text, err := m.MarshalText()
		if err != nil {
			return tomlString(err.Error())
		}
		return tomlString(string(text))
	}
	switch v.Kind() {
	case reflect.Pointer:
		return tomlValue(v.Elem(), secret)
	case reflect.String:
		return tomlString(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float32, reflect.Float64:
		s := strconv.FormatFloat(v.Float(), 'f', -1, 64)
		if !strings.ContainsAny(s, ".eEnN") {
			s += ".0"
		}
		return s
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = tomlValue(v.Index(i), secret)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Struct:
		var parts []string
		typ := v.Type()
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name := f.Tag.Get("toml")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if fv := v.Field(i); !(fv.Kind() == reflect.Pointer && fv.IsNil()) {
				parts = append(parts, displayPath([]string{name})+" = "+tomlValue(fv, f.Tag.Get("secret") == "true"))
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return tomlString(fmt.Sprint(v.Interface()))
}

// shortDuration formats d as it would be written: "1h", "5m", "1h30m",
// "500ms" (time.Duration.String writes "1h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
