package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlstructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"

	"gannet/engine/mimebuild"
)

// The Jinja side of the inject API's templates: what the fast path of
// template.go does not parse ("{% … %}", "{# … #}", filters, expressions)
// is compiled by gonja, once per request and template, in a sandbox:
//
//   - no loader: include, extends, import and from are not even statements
//     (a parse error), and the loader refuses every name anyway;
//   - a whitelist of statements (if, for, set, raw, break, continue),
//     filters, tests and globals (range); no Python-style methods; the
//     data are the plain maps, lists, strings, numbers and booleans of the
//     request's JSON; recursive loops, macros, the block form of set and
//     set of an attribute (which would change the data) are refused;
//   - the parsed tree is rewritten (rewriter) so that "+", "~", "*", list
//     and dict literals, x.y / x[y], loop iterables and outputs go through
//     Gannet's filters, which size what they make before making it, count
//     steps, look items up without Go reflection on methods, and check
//     what lands in a whole message's header section for CR and LF;
//   - bounded: source size and nesting before parsing (gonja's lexer
//     allocates by source size, its parser is quadratic in nesting), tree
//     depth after; the output by the message limit (mimebuild.ErrTooLarge,
//     413); strings and lists by the same limit; work by steps per render
//     and per request and by a deadline per request (errTemplateLimit,
//     which ends the whole request with 422); a panic in gonja is
//     recovered as a template error.

// errTemplateLimit is a Jinja render stopped by the sandbox's step, time
// or value-size limit. The template is the same for every recipient, so
// the inject handler ends the whole request with 422.
var errTemplateLimit = errors.New("template limit")

const (
	// jinjaMaxSteps bounds the work of one render: loop iterations, items
	// iterated, range elements, filter and operator calls, and a step per
	// 256 bytes a string operation makes (about a microsecond a step).
	jinjaMaxSteps = 250_000
	// jinjaRenderTime is the time all the Jinja renders of one request may
	// take together: a last resort, the step budgets come first.
	jinjaRenderTime = 10 * time.Second
	// jinjaMaxSource is the longest template gonja compiles (its lexer
	// allocates some 20 bytes of tokens per byte of source up front);
	// longer ones may only use "{{ path }}" placeholders.
	jinjaMaxSource = 1 << 20
	// jinjaMaxRange is the longest range() a template may ask for.
	jinjaMaxRange = 100_000
	// stateKey holds the render state in the context: not an identifier,
	// so no template can name it.
	stateKey = "\x00gannet"
)

// jinjaMaxRequestSteps bounds the steps of all the renders of one request
// (a hundred renders at their limit); a variable for the tests.
var jinjaMaxRequestSteps = 100 * jinjaMaxSteps

// jinjaState is the state of one render, reachable from filters and
// statements through the context.
type jinjaState struct {
	steps     int
	shared    *jinjaShared // the request's budget
	sizeLimit int          // longest string or list an operator or filter may make
	err       error        // why the render was stopped
	cause     error        // the first error of a Gannet filter (a misuse)
	w         *limitWriter // the output
}

// usage records a filter's error (for the message) and returns it as a
// value.
func (st *jinjaState) usage(err error) *exec.Value {
	if st.cause == nil {
		st.cause = err
	}
	return errValue(err)
}

// step spends n steps and checks the time every so often.
func (st *jinjaState) step(n int) error {
	if st.err != nil {
		return st.err
	}
	before := st.steps
	st.steps += n
	st.shared.steps += n
	if n < 0 || st.steps > jinjaMaxSteps {
		return st.fail(fmt.Errorf("%w: the template does too much work (more than %d loop iterations, items or calls)", errTemplateLimit, jinjaMaxSteps))
	}
	if st.shared.steps > jinjaMaxRequestSteps {
		return st.fail(fmt.Errorf("%w: the templates of this request do too much work together (more than %d loop iterations, items or calls)", errTemplateLimit, jinjaMaxRequestSteps))
	}
	if before>>6 != st.steps>>6 && time.Now().After(st.shared.deadline) {
		return st.fail(fmt.Errorf("%w: rendering took longer than %v", errTemplateLimit, jinjaRenderTime))
	}
	return nil
}

func (st *jinjaState) fail(err error) error {
	if st.err == nil {
		st.err = err
	}
	return st.err
}

// checkSize refuses a value of n bytes (or items) past the size limit.
func (st *jinjaState) checkSize(n int, what string) error {
	if n < 0 || n > st.sizeLimit {
		return st.fail(fmt.Errorf("%w: %s would be longer than the message limit (%d)", errTemplateLimit, what, st.sizeLimit))
	}
	return nil
}

func stateOf(ctx *exec.Context) *jinjaState {
	x, _ := ctx.Get(stateKey)
	st, _ := x.(*jinjaState)
	if st == nil { // cannot happen: every render sets it
		st = &jinjaState{shared: &jinjaShared{deadline: time.Now().Add(jinjaRenderTime)}, sizeLimit: 1 << 20}
		ctx.Set(stateKey, st)
	}
	return st
}

func errValue(err error) *exec.Value { return exec.AsValue(err) }

// noLoader refuses every template name except the one being compiled.
type noLoader struct{ src string }

const rootName = "template"

var errNoLoader = errors.New("templates cannot load other templates (include, extends and import are not available)")

func (l noLoader) Read(name string) (io.Reader, error) {
	if name == rootName {
		return strings.NewReader(l.src), nil
	}
	return nil, errNoLoader
}
func (l noLoader) Resolve(name string) (string, error)    { return "", errNoLoader }
func (l noLoader) Inherit(string) (loaders.Loader, error) { return nil, errNoLoader }

var (
	jinjaOnce     sync.Once
	jinjaEnv      *exec.Environment
	jinjaConf     *config.Config
	jinjaHTMLConf *config.Config
)

// jinjaFilters are gonja's filters that only transform their input within
// a small factor; the others (center, indent, format, wordwrap, batch,
// random, …) are left out. join and replace are Gannet's, sized first.
var jinjaFilters = []string{
	"abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
	"int", "items", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
	"reverse", "round", "safe", "select", "selectattr", "sort", "string", "striptags", "sum",
	"title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "wordcount",
}

// jinjaTests are gonja's tests the sandbox keeps (all are cheap).
var jinjaTests = []string{
	"boolean", "defined", "divisibleby", "eq", "equalto", "even", "false", "float", "ge", "gt",
	"in", "integer", "iterable", "le", "lower", "lt", "mapping", "ne", "none", "number", "odd",
	"sequence", "string", "true", "undefined", "upper",
}

func jinjaEnvironment() (env *exec.Environment, text, html *config.Config) {
	jinjaOnce.Do(func() {
		filters := map[string]exec.FilterFunction{}
		for _, name := range jinjaFilters {
			if f, ok := builtins.Filters.Get(name); ok {
				filters[name] = boundedFilter(name, f)
			}
		}
		filters["join"] = filterJoin
		filters["replace"] = filterReplace
		filters[opOut] = filterOut
		filters[opAttr] = filterAttr
		filters[opValue] = filterValue
		filters[opAdd] = filterAdd
		filters[opCat] = filterCat
		filters[opMul] = filterMul
		filters[opIter] = filterIter
		filters[opHeader] = filterHeader
		tests := map[string]exec.TestFunction{}
		for _, name := range jinjaTests {
			if t, ok := builtins.Tests.Get(name); ok {
				tests[name] = t
			}
		}
		cs := map[string]parser.ControlStructureParser{"for": located(forParser), "set": located(setParser)}
		for _, name := range []string{"if", "raw", "break", "continue"} {
			if p, ok := builtins.ControlStructures.Get(name); ok {
				cs[name] = located(p)
			}
		}
		jinjaEnv = &exec.Environment{
			Context:           exec.NewContext(map[string]any{"range": jinjaRange}),
			Filters:           exec.NewFilterSet(filters),
			Tests:             exec.NewTestSet(tests),
			ControlStructures: exec.NewControlStructureSet(cs),
			Methods: exec.Methods{
				Bool:  exec.NewMethodSet(map[string]exec.Method[bool]{}),
				Int:   exec.NewMethodSet(map[string]exec.Method[int]{}),
				Float: exec.NewMethodSet(map[string]exec.Method[float64]{}),
				Str:   exec.NewMethodSet(map[string]exec.Method[string]{}),
				Dict:  exec.NewMethodSet(map[string]exec.Method[map[string]any]{}),
				List:  exec.NewMethodSet(map[string]exec.Method[[]any]{}),
			},
		}
		c := config.New()
		c.AutoEscape = false
		// Like the fast path: a final newline is the template's own.
		c.KeepTrailingNewline = true
		jinjaConf = c
		jinjaHTMLConf = c.Inherit()
		jinjaHTMLConf.AutoEscape = true
	})
	return jinjaEnv, jinjaConf, jinjaHTMLConf
}

// jinjaTemplate is a template compiled by gonja: once for text, and once
// more with HTML auto-escaping when it is first rendered for html_body.
// It is immutable but for that, and shared through jinjaCache by
// concurrent requests.
type jinjaTemplate struct {
	src       string
	headerEnd int // 0 for a whole message, -1 for the builder's parts
	plain     *exec.Template

	htmlOnce sync.Once
	html     *exec.Template
	htmlErr  error
}

// compileJinja parses src, or finds it in jinjaCache. With headerEnd >= 0
// (a whole message) every output ("{{ … }}") that lands in the header
// section of the rendered message — before its first empty line, wherever
// it stands in the source — is checked for CR and LF.
func compileJinja(src string, headerEnd int) (*jinjaTemplate, error) {
	if len(src) > jinjaMaxSource {
		return nil, fmt.Errorf("%w: a template with statements, filters or expressions may be at most %d bytes (this one is %d)", ErrTemplate, jinjaMaxSource, len(src))
	}
	headerEnd = min(headerEnd, 0) // only whether it is a whole message matters
	key := jinjaCacheKey{src, headerEnd}
	if jt := jinjaCache.get(key); jt != nil {
		return jt, nil
	}
	t, err := parseJinja(src, headerEnd, false)
	if err != nil {
		return nil, err
	}
	jt := &jinjaTemplate{src: src, headerEnd: headerEnd, plain: t}
	jinjaCache.put(key, jt)
	return jt, nil
}

// htmlTemplate is the template with HTML auto-escaping.
func (jt *jinjaTemplate) htmlTemplate() (*exec.Template, error) {
	jt.htmlOnce.Do(func() { jt.html, jt.htmlErr = parseJinja(jt.src, jt.headerEnd, true) })
	return jt.html, jt.htmlErr
}

// jinjaCache keeps compiled templates by source, so that a campaign or a
// transactional template sent again and again is parsed once: at most
// jinjaCacheEntries templates of at most jinjaCacheSource bytes each and
// jinjaCacheBytes together (a parsed tree takes some 50 times its source);
// when full, arbitrary entries make room.
var jinjaCache = &templateCache{m: map[jinjaCacheKey]*jinjaTemplate{}}

const (
	jinjaCacheEntries = 64
	jinjaCacheSource  = 64 << 10
	jinjaCacheBytes   = 1 << 20
)

type jinjaCacheKey struct {
	src       string
	headerEnd int
}

type templateCache struct {
	mu    sync.Mutex
	m     map[jinjaCacheKey]*jinjaTemplate
	bytes int // of the sources in m
}

func (c *templateCache) get(k jinjaCacheKey) *jinjaTemplate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *templateCache) put(k jinjaCacheKey, jt *jinjaTemplate) {
	if len(k.src) > jinjaCacheSource {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	for old := range c.m {
		if len(c.m) < jinjaCacheEntries && c.bytes+len(k.src) <= jinjaCacheBytes {
			break
		}
		delete(c.m, old)
		c.bytes -= len(old.src)
	}
	c.m[k] = jt
	c.bytes += len(k.src)
}

func parseJinja(src string, headerEnd int, escape bool) (t *exec.Template, err error) {
	env, conf, htmlConf := jinjaEnvironment()
	if escape {
		conf = htmlConf
	}
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%w: cannot parse the template: %v", ErrTemplate, r)
		}
	}()
	if err := checkNesting(src, conf); err != nil {
		return nil, err
	}
	t, err = exec.NewTemplate(rootName, conf, noLoader{src}, env)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrTemplate, jinjaErrorText(err, src, conf, env))
	}
	root := t.Root()
	if root.Parent != nil || len(root.Macros) > 0 {
		return nil, fmt.Errorf("%w: extends and macros are not available", ErrTemplate)
	}
	rw := rewriter{headerEnd: headerEnd, seen: map[uintptr]bool{}}
	rw.walk(reflect.ValueOf(root))
	if rw.tooDeep {
		return nil, fmt.Errorf("%w: the template nests too deep (expressions or statements)", ErrTemplate)
	}
	return t, nil
}

// jinjaMaxNesting bounds how deep statements, and brackets in
// expressions, may nest: gonja parses them recursively, in time that grows
// with the square of the depth.
const jinjaMaxNesting = 64

// checkNesting refuses a template whose statements or brackets nest more
// than jinjaMaxNesting deep, before gonja parses it.
func checkNesting(src string, conf *config.Config) error {
	s := tokens.LexAll(src, conf)
	blocks, brackets := 0, 0
	var prev *tokens.Token
	for ; !s.End(); s.Next() {
		t := s.Current()
		switch t.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			brackets++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			brackets--
		case tokens.VariableEnd, tokens.BlockEnd:
			brackets = 0
		case tokens.Name:
			if prev != nil && prev.Type == tokens.BlockBegin {
				switch {
				case strings.HasPrefix(t.Val, "end"):
					blocks--
				case t.Val != "else" && t.Val != "elif" && t.Val != "set" && t.Val != "break" && t.Val != "continue":
					blocks++
				}
			}
		}
		if blocks > jinjaMaxNesting || brackets > jinjaMaxNesting {
			return fmt.Errorf("%w: line %d column %d: nested more than %d deep", ErrTemplate, t.Line, t.Col, jinjaMaxNesting)
		}
		prev = t
	}
	return nil
}

// jinjaErrorText turns a gonja compile error into a message that says what
// and where, without repeating the template's source (which gonja puts in
// its error text).
func jinjaErrorText(err error, src string, conf *config.Config, env *exec.Environment) string {
	var se *parser.SyntaxError
	if errors.As(err, &se) && (se.Line > 0 || se.Column > 0) {
		return fmt.Sprintf("line %d column %d: %s (near %q)", se.Line, se.Column, strings.TrimSuffix(se.Message, "."), se.Raw)
	}
	msg := err.Error()
	if se != nil {
		msg = se.Message
	}
	msg = strings.TrimPrefix(msg, "failed to parse template '"+src+"': ")
	msg = strings.TrimSuffix(msg, ".")
	if at := locateOutputError(src, conf, env); at != nil {
		return fmt.Sprintf("line %d column %d: %s", at.Line, at.Col, msg)
	}
	return msg
}

// locateOutputError finds the output ("{{ … }}") of src that does not
// parse on its own: gonja's errors inside an output have no position. It
// tries the first 1000 outputs at most.
func locateOutputError(src string, conf *config.Config, env *exec.Environment) *tokens.Token {
	s := tokens.LexAll(src, conf)
	var begin *tokens.Token
	for tries := 0; !s.End() && tries < 1000; s.Next() {
		switch t := s.Current(); t.Type {
		case tokens.VariableBegin:
			begin = t
		case tokens.VariableEnd:
			if begin != nil && begin.Pos <= t.Pos {
				tries++
				out := src[begin.Pos : t.Pos+len(t.Val)]
				if _, err := exec.NewTemplate(rootName, conf, noLoader{out}, env); err != nil {
					return begin
				}
			}
			begin = nil
		}
	}
	return begin // an output left open, or nil
}

// render appends the template expanded for data to dst, at most limit
// bytes in total (mimebuild.ErrTooLarge past it).
func (jt *jinjaTemplate) render(dst []byte, data map[string]any, escape bool, shared *jinjaShared, limit int) (out []byte, err error) {
	t := jt.plain
	if escape {
		if t, err = jt.htmlTemplate(); err != nil {
			return dst, err
		}
	}
	st := &jinjaState{shared: shared, sizeLimit: max(limit-len(dst), 0)}
	w := &limitWriter{buf: dst, limit: limit, st: st, header: jt.headerEnd >= 0,
		lastLF: len(dst) == 0 || dst[len(dst)-1] == '\n'}
	st.w = w
	data[stateKey] = st // data is this render's own map (jinjaData)
	ctx := exec.NewContext(data)
	defer func() {
		if r := recover(); r != nil {
			out, err = dst, fmt.Errorf("%w: %v", ErrTemplate, r)
		}
	}()
	if err := t.Execute(w, ctx); err != nil {
		if st.err != nil {
			return dst, st.err
		}
		return dst, fmt.Errorf("%w: %s", ErrTemplate, renderErrorText(err, st.cause))
	}
	if st.err != nil {
		return dst, st.err
	}
	return w.buf, nil
}

// renderErrorText shortens gonja's chain of render errors ("unable to
// execute template: Unable to execute controlStructure at line 1: …") to
// its first position and its cause.
func renderErrorText(err, cause error) string {
	msg := strings.TrimPrefix(err.Error(), "unable to execute template: ")
	parts := strings.Split(msg, ": ")
	where := ""
	for _, p := range parts {
		if i := strings.Index(p, " at line "); i >= 0 && where == "" {
			var line int
			if _, err := fmt.Sscanf(p[i+len(" at line "):], "%d", &line); err == nil {
				where = fmt.Sprintf("line %d: ", line)
			}
		}
	}
	if cause != nil {
		return where + cause.Error()
	}
	return where + parts[len(parts)-1]
}

// limitWriter collects the output; past limit it stops the render with
// mimebuild.ErrTooLarge.
type limitWriter struct {
	buf   []byte
	limit int
	st    *jinjaState
	// header: a whole message's header section is still being written
	// (no empty line yet); lastLF: the output so far ends with LF.
	header, lastLF bool
}

// track follows the output for the end of the header section.
func (w *limitWriter) track(s string) {
	for i := 0; w.header && i < len(s); i++ {
		lf := s[i] == '\n'
		if lf && w.lastLF {
			w.header = false
		}
		w.lastLF = lf
	}
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.st.err != nil {
		return 0, w.st.err
	}
	if len(p) > w.limit-len(w.buf) {
		return 0, w.st.fail(mimebuild.ErrTooLarge)
	}
	if err := w.st.step(1); err != nil {
		return 0, err
	}
	w.track(string(p))
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *limitWriter) WriteString(s string) (int, error) {
	if w.st.err != nil {
		return 0, w.st.err
	}
	if len(s) > w.limit-len(w.buf) {
		return 0, w.st.fail(mimebuild.ErrTooLarge)
	}
	if err := w.st.step(1); err != nil {
		return 0, err
	}
	w.track(s)
	w.buf = append(w.buf, s...)
	return len(s), nil
}

// Internal filters the rewriter puts in place of operators and around
// loop iterables and header outputs. Their names are not identifiers a
// template could write after "|" except as what they are (the same
// bounded operation).
const (
	opAdd    = "_gannet_add"
	opCat    = "_gannet_cat"
	opMul    = "_gannet_mul"
	opIter   = "_gannet_iter"
	opHeader = "_gannet_header"
	opOut    = "_gannet_out"
	opAttr   = "_gannet_attr"
	opValue  = "_gannet_value"
)

// rewriter walks a parsed template and makes it bounded: "+", "~" and "*"
// become sized filters, every for loop's iterable is counted against the
// step budget, and outputs in the header section are checked for CR/LF.
type rewriter struct {
	headerEnd int
	seen      map[uintptr]bool
	depth     int
	tooDeep   bool
}

// maxWalkDepth bounds the depth of a parsed template (in walk calls,
// about three per operator of a chain like "a ~ b ~ c", ten per nested
// statement): gonja evaluates the tree recursively, and a deep one would
// overflow the stack, which Go cannot recover from.
const maxWalkDepth = 3000

var (
	typeToken    = reflect.TypeFor[tokens.Token]()
	typeFiltered = reflect.TypeFor[*nodes.FilteredExpression]()
	binaryFilter = map[tokens.Type]string{tokens.Addition: opAdd, tokens.Tilde: opCat, tokens.Multiply: opMul}
)

func (rw *rewriter) walk(v reflect.Value) {
	if rw.depth++; rw.depth > maxWalkDepth {
		rw.tooDeep = true
	}
	defer func() { rw.depth-- }()
	if rw.tooDeep {
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		inner := v.Elem()
		rw.walk(inner)
		if !v.CanSet() || !typeFiltered.Implements(v.Type()) {
			return
		}
		switch n := inner.Interface().(type) {
		case *nodes.BinaryExpression:
			if name, ok := binaryFilter[n.Operator.Token.Type]; ok {
				v.Set(reflect.ValueOf(filtered(n.Left, n.Operator.Token, name, n.Right)))
			}
		case *nodes.List, *nodes.Tuple, *nodes.Dict:
			v.Set(reflect.ValueOf(filtered(n.(nodes.Expression), n.(nodes.Expression).Position(), opValue)))
		case *nodes.GetAttribute:
			var key nodes.Expression = &nodes.String{Location: n.Location, Val: n.Attribute}
			if n.Attribute == "" {
				key = &nodes.Integer{Location: n.Location, Val: n.Index}
			}
			v.Set(reflect.ValueOf(filtered(n.Node, n.Location, opAttr, key)))
		case *nodes.GetItem:
			if n.Arg != nil {
				v.Set(reflect.ValueOf(filtered(n.Node, n.Location, opAttr, n.Arg)))
			}
		}
	case reflect.Pointer:
		if v.IsNil() || v.Type().Elem() == typeToken || rw.seen[v.Pointer()] {
			return
		}
		rw.seen[v.Pointer()] = true
		call, _ := v.Interface().(*nodes.Call)
		var fn nodes.Node
		if call != nil {
			fn = call.Func
		}
		rw.walk(v.Elem())
		switch n := v.Interface().(type) {
		case *nodes.Call:
			// What is called stays as it is (gonja dispatches on it:
			// loop.cycle(…)); what it is called on was walked.
			n.Func = fn
		case *nodes.Output:
			n.Expression = filtered(n.Expression, n.Start, opOut)
			if n.Alternative != nil {
				n.Alternative = filtered(n.Alternative, n.Start, opOut)
			}
			if rw.headerEnd >= 0 {
				n.Expression = filtered(n.Expression, n.Start, opHeader)
				if n.Alternative != nil {
					n.Alternative = filtered(n.Alternative, n.Start, opHeader)
				}
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				rw.walk(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			rw.walk(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			rw.walk(e)
			v.SetMapIndex(k, e)
		}
	}
}

// filtered is "x | name(args…)".
func filtered(x nodes.Expression, at *tokens.Token, name string, args ...nodes.Expression) *nodes.FilteredExpression {
	return &nodes.FilteredExpression{Expression: x, Filters: []*nodes.FilterCall{{Token: at, Name: name, Args: args, Kwargs: map[string]nodes.Expression{}}}}
}

// located gives the errors of a statement's parser that have no position
// the position of the statement.
func located(parse parser.ControlStructureParser) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		at := p.Current()
		cs, err := parse(p, args)
		var se *parser.SyntaxError
		if err != nil && !(errors.As(err, &se) && se.Line > 0) && at != nil {
			return nil, &parser.SyntaxError{Message: err.Error(), Raw: at.Val, Line: at.Line, Column: at.Col}
		}
		return cs, err
	}
}

// forParser is gonja's for statement with a step at the start of every
// iteration and its iterable counted; recursive loops are refused.
func forParser(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	parse, _ := controlstructures.All.Get("for")
	at := p.Current()
	cs, err := parse(p, args)
	if err != nil {
		return nil, err
	}
	f, ok := cs.(*controlstructures.ForControlStructure)
	if !ok {
		return nil, p.Error("for: unexpected statement", at)
	}
	if f.Recursive {
		return nil, p.Error("for: recursive loops are not available", at)
	}
	f.ObjectEvaluator = filtered(f.ObjectEvaluator, at, opIter)
	step := &nodes.ControlStructureBlock{Location: at, Name: "step", ControlStructure: &stepNode{at: at}}
	f.BodyWrapper.Nodes = append([]nodes.Node{step}, f.BodyWrapper.Nodes...)
	return f, nil
}

// stepNode spends one step when rendered.
type stepNode struct{ at *tokens.Token }

func (s *stepNode) Position() *tokens.Token { return s.at }
func (s *stepNode) String() string          { return "step" }
func (s *stepNode) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	return stateOf(r.Environment.Context).step(1)
}

// setStatement is "{% set name = expression %}". Targets other than a
// plain name (attributes, items: they would change the request's data
// for later iterations) and the block form (it buffers its body outside
// the output limit) are not available.
type setStatement struct {
	At         *tokens.Token
	Name       string
	Expression nodes.Expression
}

func (s *setStatement) Position() *tokens.Token { return s.At }
func (s *setStatement) String() string          { return "set " + s.Name }
func (s *setStatement) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	v := r.Eval(s.Expression)
	if v.IsError() {
		return v
	}
	r.Environment.Context.Set(s.Name, v.Interface())
	return nil
}

func setParser(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	at := p.Current()
	name := args.Match(tokens.Name)
	if name == nil {
		return nil, args.Error("set: expected a variable name", args.Current())
	}
	if args.Match(tokens.Assign) == nil {
		return nil, args.Error("set: expected \"name = expression\" (attributes, items and the block form are not available)", args.Current())
	}
	expr, err := args.ParseExpression()
	if err != nil {
		return nil, err
	}
	if !args.End() {
		return nil, args.Error("set: unexpected text after the expression", args.Current())
	}
	return &setStatement{At: at, Name: name.Val, Expression: expr}, nil
}

// linearFilters are the filters whose work grows with the number of
// items of their input (a step per item); the others cost a step, and a
// step per 256 bytes of the strings they read and make.
var linearFilters = map[string]bool{
	"dictsort": true, "items": true, "list": true, "map": true, "max": true, "min": true,
	"reject": true, "rejectattr": true, "reverse": true, "select": true, "selectattr": true,
	"sort": true, "string": true, "sum": true, "tojson": true, "unique": true,
}

// boundedFilter is one of gonja's filters with its steps counted and a
// string result past the size limit refused. (Its input needs no check:
// the request's data are a tree no larger than the request, and what the
// template makes is sized when it is made.)
func boundedFilter(name string, f exec.FilterFunction) exec.FilterFunction {
	linear := linearFilters[name]
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		st := stateOf(e.Environment.Context)
		n := 1
		switch {
		case in.IsString():
			n += len(in.String()) / 256
		case linear && (in.IsList() || in.IsDict()):
			n += in.Len()
		}
		if err := st.step(n); err != nil {
			return errValue(err)
		}
		out := f(e, in, params)
		if out != nil && out.IsString() {
			n := len(out.String())
			if err := st.checkSize(n, "the result of "+name); err != nil {
				return errValue(err)
			}
			if err := st.step(n / 256); err != nil {
				return errValue(err)
			}
		}
		return out
	}
}

// filterIter counts the items of a loop's iterable against the budget.
func filterIter(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	st := stateOf(e.Environment.Context)
	n := 1
	if in.IsList() || in.IsDict() || in.IsString() {
		n += in.Len()
	}
	if err := st.step(n); err != nil {
		return errValue(err)
	}
	return in
}

// filterHeader refuses an output with CR or LF while the header section
// of a whole message is being written.
func filterHeader(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	st := stateOf(e.Environment.Context)
	if st.w != nil && st.w.header && strings.ContainsAny(in.String(), "\r\n") {
		return errValue(st.fail(fmt.Errorf("%w: an output in the header section", errHeaderValue)))
	}
	return in
}

// filterOut is put around every output: a list or an object is sized
// before it is made text (and the text is escaped under HTML
// auto-escaping), a boolean is written true or false as JSON and the fast
// path write it.
func filterOut(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	switch {
	case in.IsString() || in.Safe || in.IsNil() || in.IsNumber():
		return in
	case in.IsBool():
		if in.IsTrue() {
			return exec.AsValue("true")
		}
		return exec.AsValue("false")
	}
	s, err := stringOf(stateOf(e.Environment.Context), in)
	if err != nil {
		return errValue(err)
	}
	return exec.AsValue(s)
}

// filterAttr is "x.name", "x[key]" and "x[index]": the item of a map or a
// list (or the attribute of loop), nothing for anything else — as the
// fast path, "a.b.c" of a missing "a" or "b" is undefined, not an error;
// Go methods and fields are not looked up.
func filterAttr(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	key := arg(params, 0, "")
	if key == nil || in.IsNil() {
		return exec.AsValue(nil)
	}
	var k any
	switch {
	case key.IsString():
		k = key.String()
		if g, ok := in.Interface().(exec.AttributeGetter); ok {
			if v, found := g.GetAttribute(k.(string)); found {
				return v
			}
			return exec.AsValue(nil)
		}
	case key.IsInteger():
		k = key.Integer()
	default:
		return exec.AsValue(nil)
	}
	if v, found := in.GetItem(k); found {
		return v
	}
	return exec.AsValue(nil)
}

// filterValue checks the size of a list, tuple or dict literal: nested
// literals could otherwise share parts and stand for far more than they
// hold.
func filterValue(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if err := checkValue(stateOf(e.Environment.Context), in); err != nil {
		return errValue(err)
	}
	return in
}

// checkValue refuses a value whose text would pass the size limit.
func checkValue(st *jinjaState, v *exec.Value) error {
	if v.IsString() || v.IsNil() || v.IsNumber() || v.IsBool() {
		return nil
	}
	left := st.sizeLimit
	if err := sizeOf(st, v.Val, &left); err != nil {
		return err
	}
	return nil
}

// stringOf is v.String(), sized first.
func stringOf(st *jinjaState, v *exec.Value) (string, error) {
	if err := checkValue(st, v); err != nil {
		return "", err
	}
	s := v.String()
	if err := st.step(len(s) / 256); err != nil {
		return "", err
	}
	return s, nil
}

var typeValue = reflect.TypeFor[*exec.Value]()

// sizeOf takes from *left about the length of rv as text (strings their
// length, other scalars 8, containers 8 per item besides), spending a step
// per item; it stops with an error when *left runs out.
func sizeOf(st *jinjaState, rv reflect.Value, left *int) error {
	if err := st.step(1); err != nil {
		return err
	}
	for rv.IsValid() && (rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer) {
		if rv.IsNil() {
			return nil
		}
		if rv.Type() == typeValue {
			rv = rv.Interface().(*exec.Value).Val
			continue
		}
		rv = rv.Elem()
	}
	n := 8
	switch rv.Kind() {
	case reflect.String:
		n = rv.Len()
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			if err := sizeOf(st, rv.Index(i), left); err != nil {
				return err
			}
		}
	case reflect.Map:
		it := rv.MapRange()
		for it.Next() {
			if err := sizeOf(st, it.Key(), left); err != nil {
				return err
			}
			if err := sizeOf(st, it.Value(), left); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for i := 0; i < rv.NumField(); i++ {
			if rv.Type().Field(i).IsExported() {
				if err := sizeOf(st, rv.Field(i), left); err != nil {
					return err
				}
			}
		}
	}
	*left -= n
	if *left < 0 {
		return st.checkSize(-1, "a value")
	}
	return nil
}

func arg(params *exec.VarArgs, i int, kw string) *exec.Value {
	if i < len(params.Args) {
		return params.Args[i]
	}
	if v, ok := params.KwArgs[kw]; ok {
		return v
	}
	return nil
}

// filterCat is "a ~ b".
func filterCat(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	st := stateOf(e.Environment.Context)
	right := arg(params, 0, "")
	if right == nil {
		return st.usage(errors.New("~: no right operand"))
	}
	if err := st.step(1); err != nil {
		return errValue(err)
	}
	l, err := stringOf(st, in)
	if err != nil {
		return errValue(err)
	}
	r, err := stringOf(st, right)
	if err != nil {
		return errValue(err)
	}
	if err := st.checkSize(len(l)+len(r), "a ~ b"); err != nil {
		return errValue(err)
	}
	if err := st.step((len(l) + len(r)) / 256); err != nil {
		return errValue(err)
	}
	return exec.AsValue(l + r)
}

// filterAdd is "a + b": lists are concatenated, numbers added, strings
// joined.
func filterAdd(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	st := stateOf(e.Environment.Context)
	right := arg(params, 0, "")
	if right == nil {
		return st.usage(errors.New("+: no right operand"))
	}
	if err := st.step(1); err != nil {
		return errValue(err)
	}
	switch {
	case in.IsList():
		if !right.IsList() {
			return st.usage(fmt.Errorf("cannot add %s to a list", right.String()))
		}
		n := in.Len() + right.Len()
		if n > jinjaMaxRange {
			return errValue(st.fail(fmt.Errorf("%w: a list of %d items (at most %d)", errTemplateLimit, n, jinjaMaxRange)))
		}
		left := st.sizeLimit
		if err := sizeOf(st, in.Val, &left); err != nil {
			return errValue(err)
		}
		if err := sizeOf(st, right.Val, &left); err != nil {
			return errValue(err)
		}
		out := make([]any, 0, n)
		for _, v := range []*exec.Value{in, right} {
			v.Iterate(func(_, _ int, item, _ *exec.Value) bool {
				out = append(out, item.Interface())
				return true
			}, func() {})
		}
		return exec.AsValue(out)
	case in.IsFloat() || right.IsFloat():
		return exec.AsValue(in.Float() + right.Float())
	case in.IsString() || right.IsString():
		l, err := stringOf(st, in)
		if err != nil {
			return errValue(err)
		}
		r, err := stringOf(st, right)
		if err != nil {
			return errValue(err)
		}
		if err := st.checkSize(len(l)+len(r), "a + b"); err != nil {
			return errValue(err)
		}
		return exec.AsValue(l + r)
	default:
		return exec.AsValue(in.Integer() + right.Integer())
	}
}

// filterMul is "a * b": a string repeated, or numbers multiplied.
func filterMul(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	st := stateOf(e.Environment.Context)
	right := arg(params, 0, "")
	if right == nil {
		return st.usage(errors.New("*: no right operand"))
	}
	if err := st.step(1); err != nil {
		return errValue(err)
	}
	switch {
	case in.IsFloat() || right.IsFloat():
		return exec.AsValue(in.Float() * right.Float())
	case in.IsString():
		s, n := in.String(), right.Integer()
		if n <= 0 || s == "" {
			return exec.AsValue("")
		}
		if n > st.sizeLimit/len(s) {
			return errValue(st.checkSize(-1, "a string * n"))
		}
		if err := st.step(len(s) * n / 256); err != nil {
			return errValue(err)
		}
		return exec.AsValue(strings.Repeat(s, n))
	default:
		return exec.AsValue(in.Integer() * right.Integer())
	}
}

// filterJoin is "list | join(sep)", sized before it is built.
func filterJoin(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	st := stateOf(e.Environment.Context)
	sep := ""
	if v := arg(params, 0, "d"); v != nil {
		sep = v.String()
	}
	var attr string
	if v := arg(params, 1, "attribute"); v != nil {
		attr = v.String()
	}
	if in.IsString() {
		return in
	}
	if !in.IsList() {
		return st.usage(fmt.Errorf("join: not a list: %s", in.String()))
	}
	n := in.Len()
	if err := st.step(1 + n); err != nil {
		return errValue(err)
	}
	parts := make([]string, 0, n)
	size := 0
	var err error
	in.Iterate(func(i, _ int, item, _ *exec.Value) bool {
		if attr != "" {
			if v, ok := item.GetItem(attr); ok {
				item = v
			} else {
				item = exec.AsValue("")
			}
		}
		s := item.String()
		size += len(s)
		if i > 0 {
			size += len(sep)
		}
		if err = st.checkSize(size, "the result of join"); err != nil {
			return false
		}
		parts = append(parts, s)
		return true
	}, func() {})
	if err != nil {
		return errValue(err)
	}
	if err := st.step(size / 256); err != nil {
		return errValue(err)
	}
	return exec.AsValue(strings.Join(parts, sep))
}

// filterReplace is "s | replace(old, new[, count])", sized before it is
// built.
func filterReplace(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	st := stateOf(e.Environment.Context)
	oldV, newV := arg(params, 0, "old"), arg(params, 1, "new")
	if oldV == nil || newV == nil {
		return st.usage(errors.New("replace: want replace(old, new[, count])"))
	}
	s, old, repl := in.String(), oldV.String(), newV.String()
	count := -1
	if c := arg(params, 2, "count"); c != nil {
		count = c.Integer()
	}
	if err := st.step(1); err != nil {
		return errValue(err)
	}
	n := strings.Count(s, old)
	if count >= 0 && count < n {
		n = count
	}
	if n > 0 && len(repl) > len(old) {
		grow := len(repl) - len(old)
		if n > (st.sizeLimit-len(s))/grow {
			return errValue(st.checkSize(-1, "the result of replace"))
		}
	}
	if err := st.step((len(s) + n*max(len(repl)-len(old), 0)) / 256); err != nil {
		return errValue(err)
	}
	return exec.AsValue(strings.Replace(s, old, repl, count))
}

// jinjaRange is range([start, ]stop[, step]) as a list of at most
// jinjaMaxRange numbers, counted against the step budget.
func jinjaRange(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	st := stateOf(e.Environment.Context)
	var nums [3]int
	if len(params.Args) < 1 || len(params.Args) > 3 || len(params.KwArgs) > 0 {
		return st.usage(errors.New("range: want range([start, ]stop[, step])"))
	}
	for i, a := range params.Args {
		n, ok := integral(a)
		if !ok {
			return st.usage(fmt.Errorf("range: %s is not an integer", a.String()))
		}
		nums[i] = n
	}
	start, stop, step := 0, nums[0], 1
	switch len(params.Args) {
	case 2:
		start, stop = nums[0], nums[1]
	case 3:
		start, stop, step = nums[0], nums[1], nums[2]
	}
	if step == 0 {
		return st.usage(errors.New("range: step 0"))
	}
	var n uint64
	switch {
	case step > 0 && stop > start:
		d, s := uint64(stop-start), uint64(step)
		n = d / s
		if d%s != 0 {
			n++
		}
	case step < 0 && stop < start:
		d, s := uint64(start-stop), uint64(-(step+1))+1
		n = d / s
		if d%s != 0 {
			n++
		}
	}
	if n > jinjaMaxRange {
		return errValue(st.fail(fmt.Errorf("%w: range of %d numbers (at most %d)", errTemplateLimit, n, jinjaMaxRange)))
	}
	// Iterating counts the numbers; making them costs less.
	if err := st.step(int(n) / 64); err != nil {
		return errValue(err)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = start + i*step
	}
	return exec.AsValue(out)
}

// integral is v as an int when it is an integer or a float without a
// fraction.
func integral(v *exec.Value) (int, bool) {
	switch {
	case v.IsInteger():
		return v.Integer(), true
	case v.IsFloat():
		f := v.Float()
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int(f), true
	}
	return 0, false
}

// jinjaValue converts decoded JSON for gonja: numbers become int or
// float64 (so that they compare and compute as numbers), objects and
// arrays are converted deeply.
func jinjaValue(x any) any {
	switch x := x.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil && n == int64(int(n)) {
			return int(n)
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = jinjaValue(v)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, v := range x {
			l[i] = jinjaValue(v)
		}
		return l
	}
	return x
}

// jinjaData is the variables of v as one map, overlaid the way lookup
// reads them: the recipient's substitutions over email and name over the
// global substitutions.
func (v *vars) jinjaData() map[string]any {
	sh := v.jinjaShared()
	if sh.global == nil {
		sh.global, _ = jinjaValue(v.global).(map[string]any)
		if sh.global == nil {
			sh.global = map[string]any{}
		}
	}
	data := make(map[string]any, len(sh.global)+len(v.recipient)+3)
	for k, x := range sh.global {
		data[k] = x
	}
	data["email"] = v.email
	if v.name != nil {
		data["name"] = *v.name
	}
	for k, x := range v.recipient {
		data[k] = jinjaValue(x)
	}
	return data
}

// jinjaShared is what the Jinja renders of one request share: the global
// substitutions converted once, the steps of all the renders and their
// deadline.
type jinjaShared struct {
	global   map[string]any
	steps    int
	deadline time.Time
}

func (v *vars) jinjaShared() *jinjaShared {
	if v.shared == nil {
		v.shared = &jinjaShared{}
	}
	if v.shared.deadline.IsZero() {
		v.shared.deadline = time.Now().Add(jinjaRenderTime)
	}
	return v.shared
}
