package config

import "sort"

// Templates are the values a new element of each array of tables starts
// from, as in a TOML file: the built-in entry without its identity.
type Templates struct {
	smtp SMTPListener
	http HTTPListener
	dkim DKIM
}

// SMTPListener returns a new [[smtp_listener]] with the built-in values.
func (t Templates) SMTPListener() SMTPListener { return cloneSlices(t.smtp) }

// HTTPListener returns a new [[http_listener]] with the built-in values.
func (t Templates) HTTPListener() HTTPListener { return cloneSlices(t.http) }

// DKIM returns a new [[dkim]] entry with the built-in values.
func (t Templates) DKIM() DKIM { return cloneSlices(t.dkim) }

// Base returns what Parse decodes a file over: the built-in configuration,
// not yet finished or checked, and the templates of new array elements. A
// loader of another format (such as a Lua script) sets fields on it and
// hands it to Complete.
func Base() (*Config, Templates) {
	c, err := parseDefault()
	if err != nil {
		panic("config: embedded default.toml is invalid: " + err.Error())
	}
	sl, hl, dk := arrayTemplates(c)
	return c, Templates{smtp: sl, http: hl, dkim: dk}
}

// Complete finishes and checks c as Parse does a decoded file, with path as
// c.File. lineOf gives the line of path that set a key path such as
// ["smtp_listener", "[1]", "listen"] (0 when none). A non-nil error is of
// type Errors, in line order.
func Complete(c *Config, path string, lineOf func(key []string) int) error {
	c.File = path
	c.finish()
	var es Errors
	for _, p := range c.validate() {
		es = append(es, &Error{File: path, Line: lineOf(p.path), Msg: p.String()})
	}
	if len(es) == 0 {
		return nil
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}
