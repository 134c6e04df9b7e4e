package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// decoder lays a TOML document over a Config, one key at a time, so that a
// mistake in one key (an unknown name, a value of the wrong type, a value
// its type refuses) is reported and the other keys are still read. The
// document is parsed with go-toml's position-keeping parser; every key's
// line is kept for the checks that run on the decoded result.
type decoder struct {
	file string
	p    *unstable.Parser
	// tmpl gives the value a new element of an array of tables starts
	// from; nil: the zero value.
	tmpl *Templates
	errs Errors
	// lines maps exact key paths (with element segments) to the line they
	// are written on: what Complete reports problems at.
	lines *lineIndex
	// defined maps the exact paths of keys and [tables] written so far to
	// their lines: TOML allows each only once.
	defined map[string]int
	// started are the arrays of tables this document has begun: the first
	// element written replaces the built-in list.
	started map[string]bool
	// newlines are the offsets of the document's line ends, for lineAt.
	newlines []int
}

// target is where the keys of the current table go: an addressable struct,
// or a map, with the key path that leads there.
type target struct {
	v    reflect.Value
	path []string
	// commit writes v back where it came from when v is a copy of a map
	// entry (map entries are not addressable); nil when v is in place.
	commit func()
}

func (t target) valid() bool { return t.v.IsValid() }

func (t target) done() {
	if t.commit != nil {
		t.commit()
	}
}

func appendPath(path []string, segs ...string) []string {
	return append(path[:len(path):len(path)], segs...)
}

// decode lays the TOML text src over c. Every problem is returned, in the
// order found; lines maps key paths to lines for the checks that follow.
func decode(file string, src []byte, c *Config, tmpl *Templates) (Errors, *lineIndex) {
	doc, syntax := skipSyntaxErrors(file, src)
	d := &decoder{
		file:    file,
		p:       new(unstable.Parser),
		tmpl:    tmpl,
		errs:    syntax,
		lines:   &lineIndex{exact: map[string]int{}},
		defined: map[string]int{},
		started: map[string]bool{},
	}
	d.p.Reset(doc)
	root := target{v: reflect.ValueOf(c).Elem()}
	cur := root
	for d.p.NextExpression() {
		e := d.p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			d.keyValue(cur, e)
		case unstable.Table:
			cur = d.table(root, e)
		case unstable.ArrayTable:
			cur = d.arrayTable(root, e)
		}
	}
	if err := d.p.Error(); err != nil && len(syntax) == 0 {
		// skipSyntaxErrors stopped early; report the rest as it is.
		line, msg := d.syntaxError(err)
		d.errs = append(d.errs, &Error{File: file, Line: line, Msg: msg})
	}
	return d.errs, d.lines
}

// maxSyntaxErrors bounds the syntax errors reported for one file: past a
// few, the rest are usually echoes of the first.
const maxSyntaxErrors = 10

// skipSyntaxErrors finds the syntax errors of src. The TOML parser stops at
// the first; so that the mistakes after it are reported in the same run, the
// line of each error is blanked out and the text parsed again, as long as
// each new error is on a later line. It returns the text with those lines
// blanked and the errors.
func skipSyntaxErrors(file string, src []byte) ([]byte, Errors) {
	doc := src
	var es Errors
	p := new(unstable.Parser)
	last, lastMsg := 0, ""
	for len(es) < maxSyntaxErrors {
		p.Reset(doc)
		for p.NextExpression() {
		}
		err := p.Error()
		if err == nil {
			return doc, es
		}
		d := &decoder{p: p}
		line, msg := d.syntaxError(err)
		var pe *unstable.ParserError
		if errors.As(err, &pe) && pe.Message == lastMsg && line == last+1 {
			// The same complaint again: an echo of the last one (an
			// unclosed list or table), not a mistake of its own.
			break
		}
		if pe != nil {
			lastMsg = pe.Message
		}
		if line <= last {
			break
		}
		es = append(es, &Error{File: file, Line: line, Msg: msg})
		last = line
		if len(es) == 1 {
			doc = append([]byte(nil), src...)
		}
		blankLine(doc, line)
	}
	if len(es) == 0 {
		return doc, nil
	}
	// The text still does not parse: decode only what comes before the
	// error that remains.
	return cutAtError(doc), es
}

// blankLine replaces the text of line n (from 1) with blanks.
func blankLine(doc []byte, n int) {
	start := 0
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(doc[start:], '\n')
		if j < 0 {
			return
		}
		start += j + 1
	}
	for i := start; i < len(doc) && doc[i] != '\n'; i++ {
		doc[i] = ' '
	}
}

// cutAtError returns doc without the line of its syntax error and the lines
// after it (doc itself when it parses).
func cutAtError(doc []byte) []byte {
	p := new(unstable.Parser)
	p.Reset(doc)
	for p.NextExpression() {
	}
	err := p.Error()
	if err == nil {
		return doc
	}
	n, _ := (&decoder{p: p}).syntaxError(err)
	if n == 0 {
		return nil
	}
	start := 0
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(doc[start:], '\n')
		if j < 0 {
			return doc
		}
		start += j + 1
	}
	return doc[:start]
}

// syntaxError returns the line and message of an error of the parser.
func (d *decoder) syntaxError(err error) (line int, msg string) {
	var pe *unstable.ParserError
	if !errors.As(err, &pe) {
		return 0, err.Error()
	}
	line = func() (line int) {
		defer func() {
			if recover() != nil {
				line = 0
			}
		}()
		if pe.Highlight == nil {
			return 0
		}
		return d.lineAt(int(d.p.Range(pe.Highlight).Offset))
	}()
	key, value := "", ""
	if line > 0 {
		text := d.p.Data()
		start := 0
		for i := 1; i < line; i++ {
			start += bytes.IndexByte(text[start:], '\n') + 1
		}
		end := bytes.IndexByte(text[start:], '\n')
		if end < 0 {
			end = len(text) - start
		}
		if k, v, ok := strings.Cut(string(text[start:start+end]), "="); ok {
			key, value = strings.TrimSpace(k), strings.TrimSpace(v)
		}
	}
	switch {
	case pe.Message == "unexpected character U+000A at start of value" || pe.Message == "expected value, not end of input":
		msg = `TOML syntax: a value is missing after "=" (write KEY = VALUE)`
	case value != "" && (pe.Message == "strings must be quoted" || strings.HasPrefix(pe.Message, "unexpected character") && strings.HasSuffix(pe.Message, "at start of value")):
		msg = fmt.Sprintf(`TOML syntax: %s is not a value: write a string in quotes ("%s"), a number, true or false, a list [...] or a table {...}`, value, strings.ReplaceAll(value, `"`, `\"`))
	default:
		msg = "TOML syntax: " + pe.Message
		if len(pe.Highlight) > 0 && len(pe.Highlight) < 40 && !bytes.ContainsAny(pe.Highlight, "\r\n") {
			msg += fmt.Sprintf(" (at %q)", pe.Highlight)
		}
	}
	if key != "" && isBareKey(key) {
		msg = key + ": " + msg
	}
	return line, msg
}

func (d *decoder) add(line int, path []string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(path) > 0 {
		msg = displayPath(path) + ": " + msg
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: msg})
}

// lineOf returns the line n starts on, or def when n has no position of its
// own (arrays, table headers).
func (d *decoder) lineOf(n *unstable.Node, def int) int {
	if n == nil || n.Raw.Length == 0 {
		return def
	}
	return d.lineAt(int(n.Raw.Offset))
}

// lineAt returns the line (from 1) of byte offset off of the document.
func (d *decoder) lineAt(off int) int {
	if d.newlines == nil {
		d.newlines = []int{}
		for i, c := range d.p.Data() {
			if c == '\n' {
				d.newlines = append(d.newlines, i)
			}
		}
	}
	return sort.SearchInts(d.newlines, off) + 1
}

// keys returns the segments of a dotted key and the line of its first.
func (d *decoder) keys(n *unstable.Node) ([]string, int) {
	var segs []string
	line := 0
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = d.lineOf(k, 0)
		}
		segs = append(segs, string(k.Data))
	}
	return segs, line
}

// record notes that path is written at line, and reports it when it was
// written before.
func (d *decoder) record(path []string, line int) bool {
	k := joinPath(path)
	if prev, ok := d.defined[k]; ok {
		d.add(line, path, "is already set on line %d; a key or table may appear only once", prev)
		return false
	}
	d.defined[k] = line
	if _, ok := d.lines.exact[k]; !ok {
		d.lines.exact[k] = line
	}
	return true
}

// note remembers the line of path for messages without claiming it.
func (d *decoder) note(path []string, line int) {
	k := joinPath(path)
	if _, ok := d.lines.exact[k]; !ok {
		d.lines.exact[k] = line
	}
}

// tableKind tells the kinds of value a key can hold apart.
type tableKind int

const (
	kindValue      tableKind = iota
	kindTable                // a struct: [name]
	kindTableArray           // a slice of structs: [[name]]
	kindTableMap             // a map of tables: [name."KEY"]
)

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func kindOf(t reflect.Type) tableKind {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return kindValue
	}
	switch t.Kind() {
	case reflect.Struct:
		return kindTable
	case reflect.Slice:
		if e := t.Elem(); e.Kind() == reflect.Struct && !reflect.PointerTo(e).Implements(textUnmarshaler) {
			return kindTableArray
		}
	case reflect.Map:
		return kindTableMap
	}
	return kindValue
}

// fieldByKey returns the field of struct v with TOML key name.
func fieldByKey(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if tag := f.Tag.Get("toml"); tag == name && tag != "-" {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// keyNames returns the TOML keys of struct type t, in order.
func keyNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag := f.Tag.Get("toml"); f.IsExported() && tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}

// unknown reports a key that struct type t does not have, with the key
// meant when one is close.
func (d *decoder) unknown(line int, path []string, t reflect.Type, what string) {
	name := path[len(path)-1]
	names := keyNames(t)
	// The closest key, if a typo away: up to one edit in three letters.
	best, bestDist := "", max(1, len(name)/3)+1
	for _, n := range names {
		if dist := editDistance(strings.ToLower(name), n); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	where := tableName(path[:len(path)-1])
	switch {
	case best != "":
		d.add(line, path, "unknown %s; did you mean %s?", what, best)
	case len(names) <= 8:
		d.add(line, path, "unknown %s; %s has %s", what, where, strings.Join(names, ", "))
	default:
		d.add(line, path, "unknown %s; `gannet config default` lists every key of %s", what, where)
	}
}

// tableName names the table at path as it is written: [spool],
// [[smtp_listener]], the top level.
func tableName(path []string) string {
	if len(path) == 0 {
		return "the top level"
	}
	if isElem(path[len(path)-1]) {
		return "[[" + displayPath(barePath(path)) + "]]"
	}
	return "[" + displayPath(barePath(path)) + "]"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// child returns the table key seg of t leads to, creating map entries and
// pointers on the way; for an array of tables, its last element. It reports
// a key t does not have (what: "key" or "table") and returns an invalid
// target.
func (d *decoder) child(t target, seg string, line int, what string) target {
	path := appendPath(t.path, seg)
	switch t.v.Kind() {
	case reflect.Struct:
		f, ok := fieldByKey(t.v, seg)
		if !ok {
			d.unknown(line, path, t.v.Type(), what)
			return target{}
		}
		switch kindOf(f.Type()) {
		case kindTable, kindTableMap:
			for f.Kind() == reflect.Pointer {
				if f.IsNil() {
					f.Set(reflect.New(f.Type().Elem()))
				}
				f = f.Elem()
			}
			return target{v: f, path: path, commit: t.commit}
		case kindTableArray:
			// Sub-tables of an element ([a.b] after [[a]]) go to the
			// last element the file wrote; dotted keys never do.
			if !d.started[joinPath(path)] || f.Len() == 0 || what != "table" {
				d.add(line, path, "is a list of tables: write [[%s]], then its keys", displayPath(barePath(path)))
				return target{}
			}
			i := f.Len() - 1
			return target{v: f.Index(i), path: appendPath(path, elem(i)), commit: t.commit}
		}
		d.add(line, path, "is a single value, not a table: write %s = VALUE under %s", seg, tableName(t.path))
		return target{}
	case reflect.Map:
		m := t.v
		if m.IsNil() {
			m.Set(reflect.MakeMap(m.Type()))
		}
		k := reflect.ValueOf(seg)
		nv := reflect.New(m.Type().Elem()).Elem()
		if old := m.MapIndex(k); old.IsValid() {
			nv.Set(old)
		}
		parent := t.commit
		commit := func() {
			m.SetMapIndex(k, nv)
			if parent != nil {
				parent()
			}
		}
		commit()
		return target{v: nv, path: path, commit: commit}
	}
	d.add(line, t.path, "is a single value, not a table")
	return target{}
}

// table handles a [table] header and returns where its keys go.
func (d *decoder) table(root target, e *unstable.Node) target {
	segs, line := d.keys(e)
	t := root
	for i, seg := range segs {
		last := i == len(segs)-1
		if last && t.v.Kind() == reflect.Struct {
			if f, ok := fieldByKey(t.v, seg); ok && kindOf(f.Type()) == kindTableArray {
				// [smtp_listener] written for [[smtp_listener]]: say
				// so, and read the keys as an element of the list.
				name := displayPath(barePath(appendPath(t.path, seg)))
				d.add(line, appendPath(t.path, seg), "is a list of tables: write [[%s]] (two brackets), not [%s]", name, name)
				return d.newElement(target{v: f, path: appendPath(t.path, seg), commit: t.commit}, line)
			}
		}
		t = d.child(t, seg, line, "table")
		if !t.valid() {
			return target{}
		}
	}
	d.record(t.path, line)
	return t
}

// arrayTable handles an [[array]] header: a new element of the list.
func (d *decoder) arrayTable(root target, e *unstable.Node) target {
	segs, line := d.keys(e)
	t := root
	for _, seg := range segs[:len(segs)-1] {
		if t = d.child(t, seg, line, "table"); !t.valid() {
			return target{}
		}
	}
	seg := segs[len(segs)-1]
	path := appendPath(t.path, seg)
	if t.v.Kind() != reflect.Struct {
		d.add(line, path, "%s is a table of tables: write [%s.NAME], not [[%s]]", displayPath(barePath(t.path)), displayPath(barePath(t.path)), displayPath(barePath(path)))
		return target{}
	}
	f, ok := fieldByKey(t.v, seg)
	if !ok {
		d.unknown(line, path, t.v.Type(), "table")
		return target{}
	}
	name := displayPath(barePath(path))
	switch kindOf(f.Type()) {
	case kindTableArray:
		return d.newElement(target{v: f, path: path, commit: t.commit}, line)
	case kindTable:
		if d.record(path, line) {
			d.add(line, path, "is a single table: write [%s], not [[%s]]", name, name)
		}
		return target{v: f, path: path, commit: t.commit}
	case kindTableMap:
		d.add(line, path, "is a table of tables: write [%s.NAME], not [[%s]]", name, name)
	default:
		d.add(line, path, "is a single value, not a list of tables: write %s = VALUE", seg)
	}
	return target{}
}

// newElement appends an element to the array of tables at a (the first
// element of a file replaces the built-in list) and returns it.
func (d *decoder) newElement(a target, line int) target {
	k := joinPath(a.path)
	if prev, ok := d.defined[k]; ok {
		// NAME = [...] written before: TOML does not extend it.
		d.add(line, a.path, "is already set on line %d; write its elements there or as [[%s]] tables, not both", prev, displayPath(barePath(a.path)))
		return target{}
	}
	if !d.started[k] {
		d.started[k] = true
		a.v.Set(reflect.MakeSlice(a.v.Type(), 0, 1))
		d.note(a.path, line)
	}
	a.v.Set(reflect.Append(a.v, d.template(a.path, a.v.Type().Elem())))
	i := a.v.Len() - 1
	t := target{v: a.v.Index(i), path: appendPath(a.path, elem(i)), commit: a.commit}
	d.record(t.path, line)
	t.done()
	return t
}

// template returns the value a new element of the array of tables at path
// starts from.
func (d *decoder) template(path []string, typ reflect.Type) reflect.Value {
	if d.tmpl != nil && len(path) == 1 {
		switch path[0] {
		case "smtp_listener":
			return reflect.ValueOf(d.tmpl.SMTPListener())
		case "http_listener":
			return reflect.ValueOf(d.tmpl.HTTPListener())
		case "dkim":
			return reflect.ValueOf(d.tmpl.DKIM())
		}
	}
	return reflect.New(typ).Elem()
}

// keyValue handles KEY = VALUE in table t (nothing when t is a table that
// was reported already).
func (d *decoder) keyValue(t target, e *unstable.Node) {
	if !t.valid() {
		return
	}
	segs, line := d.keys(e)
	for _, seg := range segs[:len(segs)-1] {
		if t = d.child(t, seg, line, "key"); !t.valid() {
			return
		}
	}
	seg := segs[len(segs)-1]
	path := appendPath(t.path, seg)
	var dst reflect.Value
	switch t.v.Kind() {
	case reflect.Struct:
		f, ok := fieldByKey(t.v, seg)
		if !ok {
			d.unknown(line, path, t.v.Type(), "key")
			return
		}
		dst = f
	case reflect.Map:
		e := d.child(t, seg, line, "key")
		dst = e.v
		t = e
	default:
		return
	}
	if !d.record(path, line) {
		return
	}
	v := reflect.New(dst.Type()).Elem()
	v.Set(dst)
	if d.value(v, e.Value(), path, line) {
		dst.Set(v)
	}
	t.done()
}

// value decodes node n into v (addressable), reporting what is wrong at the
// line of n (line when n has none). It reports whether v was set.
func (d *decoder) value(v reflect.Value, n *unstable.Node, path []string, line int) bool {
	line = d.lineOf(n, line)
	typ := v.Type()
	if typ.Kind() == reflect.Pointer {
		nv := reflect.New(typ.Elem())
		if !d.value(nv.Elem(), n, path, line) {
			return false
		}
		v.Set(nv)
		return true
	}
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if typ == reflect.TypeFor[Size]() && n.Kind == unstable.Integer {
			i, ok := d.integer(n, path, line)
			if ok {
				v.SetInt(i)
			}
			return ok
		}
		if n.Kind != unstable.String {
			return d.wrongType(line, path, typ, n)
		}
		if err := tu.UnmarshalText(n.Data); err != nil {
			d.add(line, path, "%v", err)
			return false
		}
		return true
	}
	switch typ.Kind() {
	case reflect.String:
		if n.Kind != unstable.String {
			return d.wrongType(line, path, typ, n)
		}
		v.SetString(string(n.Data))
	case reflect.Bool:
		if n.Kind != unstable.Bool {
			return d.wrongType(line, path, typ, n)
		}
		v.SetBool(string(n.Data) == "true")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.Kind != unstable.Integer {
			return d.wrongType(line, path, typ, n)
		}
		i, ok := d.integer(n, path, line)
		if !ok {
			return false
		}
		if v.OverflowInt(i) {
			d.add(line, path, "%d is too large", i)
			return false
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		var f float64
		switch n.Kind {
		case unstable.Integer:
			i, ok := d.integer(n, path, line)
			if !ok {
				return false
			}
			f = float64(i)
		case unstable.Float:
			s := strings.ReplaceAll(string(n.Data), "_", "")
			var err error
			if f, err = strconv.ParseFloat(strings.TrimPrefix(s, "+"), 64); err != nil {
				d.add(line, path, "%s is not a number", n.Data)
				return false
			}
		default:
			return d.wrongType(line, path, typ, n)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.Kind != unstable.Array {
			return d.wrongType(line, path, typ, n)
		}
		out := reflect.MakeSlice(typ, 0, 4)
		ok := true
		it := n.Children()
		for i := 0; it.Next(); i++ {
			c := it.Node()
			if c.Kind == unstable.Comment {
				i--
				continue
			}
			ep := appendPath(path, elem(i))
			ev := d.template(path, typ.Elem())
			nv := reflect.New(typ.Elem()).Elem()
			nv.Set(ev)
			if c.Kind == unstable.InlineTable {
				d.note(ep, d.lineOf(c, line))
			}
			if d.value(nv, c, ep, line) {
				out = reflect.Append(out, nv)
			} else {
				ok = false
			}
		}
		if !ok {
			return false
		}
		v.Set(out)
	case reflect.Struct, reflect.Map:
		if n.Kind != unstable.InlineTable {
			return d.wrongType(line, path, typ, n)
		}
		before := len(d.errs)
		t := target{v: v, path: path}
		it := n.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				d.keyValue(t, c)
			}
		}
		return len(d.errs) == before
	default:
		d.add(line, path, "cannot be set from a file")
		return false
	}
	return true
}

// integer parses a TOML integer: decimal with optional sign and
// underscores, or 0x, 0o, 0b.
func (d *decoder) integer(n *unstable.Node, path []string, line int) (int64, bool) {
	s := strings.ReplaceAll(string(n.Data), "_", "")
	base := 10
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
		if base != 10 {
			s = s[2:]
		}
	}
	i, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), base, 64)
	if err != nil {
		d.add(line, path, "%s is too large an integer", n.Data)
		return 0, false
	}
	return i, true
}

// wrongType reports a value of the wrong kind, with what to write instead.
func (d *decoder) wrongType(line int, path []string, typ reflect.Type, n *unstable.Node) bool {
	d.add(line, path, "must be %s, not %s", wants(typ), found(n))
	return false
}

// wants describes the values of a Go type as they are written in TOML.
func wants(typ reflect.Type) string {
	switch typ {
	case reflect.TypeFor[Duration]():
		return `a duration in quotes, such as "30s", "5m" or "72h"`
	case reflect.TypeFor[Size]():
		return `a size: bytes as an integer, or "512KiB", "20MiB", "10MB", "1GiB"`
	case reflect.TypeFor[Rate]():
		return `a rate in quotes, such as "100/s", "1000/m" or "unlimited"`
	case reflect.TypeFor[CIDR]():
		return `an address or network in quotes, such as "192.0.2.0/24" or "127.0.0.1"`
	case reflect.TypeFor[TLSVersion]():
		return `a TLS version in quotes: "1.0", "1.1", "1.2" or "1.3"`
	}
	switch typ.Kind() {
	case reflect.String:
		return "a string in quotes"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if kindOf(typ) == kindTableArray {
			return "a list of tables"
		}
		return "a list in brackets, each element " + wants(typ.Elem())
	case reflect.Struct, reflect.Map:
		return "a table"
	case reflect.Pointer:
		return wants(typ.Elem())
	}
	return typ.String()
}

// found describes a TOML value for messages.
func found(n *unstable.Node) string {
	switch n.Kind {
	case unstable.String:
		s := string(n.Data)
		if len(s) > 40 {
			s = s[:37] + "..."
		}
		return "the string " + strconv.Quote(s)
	case unstable.Integer:
		return "the integer " + string(n.Data)
	case unstable.Float:
		return "the number " + string(n.Data)
	case unstable.Bool:
		return string(n.Data)
	case unstable.Array:
		return "a list"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalDateTime, unstable.LocalTime, unstable.DateTime:
		return "the date " + string(n.Data)
	}
	return n.Kind.String()
}

// sortErrors puts problems in file order, as a compiler reports them;
// problems without a line of their own first.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}
