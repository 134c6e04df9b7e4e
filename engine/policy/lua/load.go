// Package lua loads a Gannet configuration written as a Lua script, in the
// style of KumoMTA's policy files (see docs/policy.md).
//
// Load runs the script once, in a fresh gopher-lua state that has no io,
// package, debug or file-loading functions, an os table with only clock,
// date, difftime, getenv and time, and a require that loads modules from the
// script's own directory. The run has a time budget, so that a script that
// loops forever fails to load instead of hanging. The script's configuration
// calls (kumo.start_smtp_listener, kumo.configure_queue, …) set the fields of
// the same configuration a TOML file decodes into, which is then finished
// and checked as a TOML file is (config.Base, config.Complete).
//
// kumo.on("init", fn) runs fn once the script has run, as KumoMTA does. Other
// kumo.on(event, fn) registrations are remembered (Script.Events) and run by
// Script.Start: the returned *Hooks keeps a pool of Lua states, each built by
// running the script's top level again in run mode (configuration calls do
// nothing, init handlers do not run, kumo.on records the handler), and calls
// the handlers of an event in registration order, one state per goroutine,
// each call within its time budget (see hooks.go and run.go).
package lua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gannet/engine/config"

	glua "github.com/yuin/gopher-lua"
)

// Budget is how long the top level of a script (and its init handlers) may
// run at load.
const Budget = 5 * time.Second

// Script is a loaded policy script: its configuration and the events it
// registered hooks for.
type Script struct {
	Config *config.Config
	// Events are the names given to kumo.on, other than "init", in the
	// order they were registered (one entry per registration).
	Events []string

	// path and src are the script, run again by Start for each state of
	// the hooks' pool.
	path string
	src  []byte
}

// Load runs the Lua configuration file at path and returns the configuration
// it builds. A non-nil error is of type config.Errors, one FILE:LINE line
// per problem.
func Load(path string) (*config.Config, error) {
	s, err := LoadScript(path)
	if err != nil {
		return nil, err
	}
	return s.Config, nil
}

// LoadScript is Load that also returns the events the script registered.
func LoadScript(path string) (*Script, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Errors{{File: path, Msg: err.Error()}}
	}
	c, t := config.Base()
	return run(path, src, Budget, c, t)
}

// Apply runs the Lua script at path over c, a configuration loaded from
// another file (TOML's [policy] script): the script's configuration calls
// override the values they name, and the result is checked again. c keeps
// its File. A non-nil error is of type config.Errors, about the script.
func Apply(c *config.Config, path string) (*Script, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Errors{{File: path, Msg: err.Error()}}
	}
	_, t := config.Base()
	file := c.File
	s, err := run(path, src, Budget, c, t)
	c.File = file
	return s, err
}

// loadSource loads a script from the built-in configuration.
func loadSource(path string, src []byte, budget time.Duration) (*Script, error) {
	c, t := config.Base()
	return run(path, src, budget, c, t)
}

// loader is the state of one load: the configuration being built and where
// each part of it was set.
type loader struct {
	path    string
	dir     string
	cfg     *config.Config
	tmpl    config.Templates
	lines   map[string]int // "queue", "smtp_listener[1]" → line of the call that set it
	keys    keyLines       // where the keys of the script's tables are written
	events  []string
	inits   []*glua.LFunction
	modules map[string]glua.LValue
	// replaced records the arrays of tables the script has started
	// anew: its first listener replaces the built-in one, as in TOML.
	replaced map[string]bool
	// memo holds kumo.memoize results: the load's own at load, the
	// hooks' (shared by the pool's states) in run mode.
	memo *memoStore

	// The run mode (a state of the hooks' pool, run.go): h is nil at load.
	h        *Hooks
	L        *glua.LState
	handlers map[string][]handler // by canonical event name
	cur      *call                // the hook call in progress; nil between calls
	budget   *budgetState         // a pool state's budget (watchdog.go); nil at load and after Close
	// The state's shared metatables: headers tables (case-insensitive
	// lookups), KumoMTA's message object, address objects.
	headerMeta, msgMeta, addrMeta *glua.LTable
	next                          *glua.LFunction // the base library's next (for __pairs)
	viewMeta                      *glua.LTable    // of the records hooks get (view.go)
}

// run runs the script src over c and completes c.
func run(path string, src []byte, budget time.Duration, c *config.Config, t config.Templates) (*Script, error) {
	ld := &loader{
		path:     path,
		dir:      filepath.Dir(path),
		cfg:      c,
		tmpl:     t,
		lines:    map[string]int{},
		keys:     scanKeyLines(src, path),
		modules:  map[string]glua.LValue{},
		replaced: map[string]bool{},
		memo:     newMemoStore(),
	}
	L := glua.NewState(glua.Options{SkipOpenLibs: true, CallStackSize: 200, RegistryMaxSize: 1 << 20, MinimizeStackMemory: true})
	defer L.Close()
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	L.SetContext(ctx)
	ld.openLibs(L)

	fn, err := L.Load(bytes.NewReader(src), path)
	if err != nil {
		if m := eofErrRe.FindStringSubmatch(err.Error()); m != nil {
			// The script ends in the middle of a statement.
			line := bytes.Count(src, []byte("\n")) + 1
			return nil, config.Errors{{File: path, Line: line, Msg: "unexpected end of the script: " + strings.TrimSpace(m[1])}}
		}
		return nil, ld.luaError(err, ctx, budget)
	}
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		return nil, ld.luaError(err, ctx, budget)
	}
	for _, f := range ld.inits {
		L.Push(f)
		if err := L.PCall(0, 0, nil); err != nil {
			return nil, ld.luaError(err, ctx, budget)
		}
	}
	if err := config.Complete(c, path, ld.lineOf); err != nil {
		return nil, err
	}
	return &Script{Config: c, Events: ld.events, path: path, src: src}, nil
}

// lineOf maps a key path of a problem config.Complete found to the line of
// the call that set that part of the configuration.
func (ld *loader) lineOf(key []string) int {
	if len(key) == 0 {
		return 0
	}
	call, ok := 0, false
	if len(key) > 1 && strings.HasPrefix(key[1], "[") {
		call, ok = ld.lines[key[0]+key[1]]
	}
	if !ok {
		call = ld.lines[key[0]]
	}
	if last := key[len(key)-1]; call > 0 && !strings.HasPrefix(last, "[") {
		return ld.keys.line(call, last)
	}
	return call
}

var (
	runtimeErrRe = regexp.MustCompile(`^(.*?):(\d+): (?s:(.*))$`)
	syntaxErrRe  = regexp.MustCompile(`line:(\d+)\(column:\d+\) (?s:(.*))$`)
	eofErrRe     = regexp.MustCompile(` at EOF:\s+(?s:(.*))$`)
)

// luaError turns an error of gopher-lua into config.Errors: FILE:LINE: what.
func (ld *loader) luaError(err error, ctx context.Context, budget time.Duration) error {
	if ctx.Err() != nil {
		return config.Errors{{File: ld.path, Msg: fmt.Sprintf("the script ran past its load budget of %s", budget)}}
	}
	msg := err.Error()
	var ae *glua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		msg = ae.Object.String()
	}
	if m := syntaxErrRe.FindStringSubmatch(msg); m != nil && ae != nil && ae.Type == glua.ApiErrorSyntax {
		line, _ := strconv.Atoi(m[1])
		return config.Errors{{File: ld.path, Line: line, Msg: strings.TrimSpace(m[2])}}
	}
	if m := runtimeErrRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[2])
		return config.Errors{{File: m[1], Line: line, Msg: m[3]}}
	}
	return config.Errors{{File: ld.path, Msg: msg}}
}

// callPos returns the file and line of the Lua code that called the
// running Go function.
func callPos(L *glua.LState) (string, int) {
	for lvl := 0; ; lvl++ {
		dbg, ok := L.GetStack(lvl)
		if !ok {
			return "", 0
		}
		if _, err := L.GetInfo("Sl", dbg, glua.LNil); err == nil && dbg.CurrentLine > 0 {
			return dbg.Source, dbg.CurrentLine
		}
	}
}

// maxRep bounds what string.rep may build, so that a script cannot ask for
// gigabytes in one call.
const maxRep = 1 << 20

// openLibs opens the sandboxed libraries and the kumo module.
func (ld *loader) openLibs(L *glua.LState) {
	for _, lib := range []struct {
		name string
		open glua.LGFunction
	}{
		{glua.BaseLibName, glua.OpenBase},
		{glua.TabLibName, glua.OpenTable},
		{glua.StringLibName, glua.OpenString},
		{glua.MathLibName, glua.OpenMath},
		{glua.OsLibName, glua.OpenOs},
		{glua.CoroutineLibName, glua.OpenCoroutine},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(glua.LString(lib.name))
		L.Call(1, 0)
	}
	// No file access from the base library.
	for _, name := range []string{"dofile", "loadfile", "module"} {
		L.SetGlobal(name, glua.LNil)
	}
	// os: only what reads the clock and the environment.
	full := L.GetGlobal("os").(*glua.LTable)
	safe := L.NewTable()
	for _, name := range []string{"clock", "date", "difftime", "getenv", "time"} {
		safe.RawSetString(name, full.RawGetString(name))
	}
	L.SetGlobal("os", safe)
	// pairs honours a __pairs metamethod (Lua 5.2), which the records
	// hooks get have (view.go).
	ld.next, _ = L.GetGlobal("next").(*glua.LFunction)
	pairs := L.GetGlobal("pairs")
	L.SetGlobal("pairs", L.NewFunction(func(L *glua.LState) int {
		v := L.Get(1)
		if mt, ok := L.GetMetatable(v).(*glua.LTable); ok {
			if f, ok := mt.RawGetString("__pairs").(*glua.LFunction); ok {
				L.Push(f)
				L.Push(v)
				L.Call(1, 3)
				return 3
			}
		}
		L.Push(pairs)
		L.Push(v)
		L.Call(1, 3)
		return 3
	}))
	str := L.GetGlobal("string").(*glua.LTable)
	rep := str.RawGetString("rep")
	str.RawSetString("rep", L.NewFunction(func(L *glua.LState) int {
		s := L.CheckString(1)
		n := L.CheckInt(2)
		if n > 0 && int64(len(s))*int64(n) > maxRep {
			L.RaiseError("string.rep: result longer than %d bytes", maxRep)
		}
		L.Push(rep)
		L.Push(glua.LString(s))
		L.Push(glua.LNumber(n))
		L.Call(2, 1)
		return 1
	}))
	budgetCoroutines(L)
	kumo := ld.kumoModule(L)
	L.SetGlobal("kumo", kumo)
	ld.modules["kumo"] = kumo // KumoMTA scripts start with local kumo = require 'kumo'
	L.SetGlobal("require", L.NewFunction(ld.require))
	ld.openGlobals(L)
}

// coroutineWrappers make a coroutine run under the budget of the code
// that resumes it: gopher-lua gives a coroutine the context of the code
// that created it, which for one created at the top level of a pool state
// is the (ended) budget of the state's build.
const coroutineWrappers = `
local create, resume, budget = coroutine.create, coroutine.resume, ...
coroutine.resume = function(co, ...)
  budget(co)
  return resume(co, ...)
end
local function pass(ok, ...)
  if not ok then error((...), 0) end
  return ...
end
coroutine.wrap = function(f)
  local co = create(f)
  return function(...) return pass(coroutine.resume(co, ...)) end
end
`

// budgetCoroutines replaces coroutine.resume and coroutine.wrap with
// coroutineWrappers.
// It runs outside the budget: it is the sandbox's own code, which cannot
// fail.
func budgetCoroutines(L *glua.LState) {
	if ctx := L.RemoveContext(); ctx != nil {
		defer L.SetContext(ctx)
	}
	fn, err := L.LoadString(coroutineWrappers)
	if err != nil {
		panic(err)
	}
	L.Push(fn)
	L.Push(L.NewFunction(func(L *glua.LState) int {
		th := L.CheckThread(1)
		if ctx := L.Context(); ctx != nil {
			th.SetContext(ctx)
		} else {
			th.RemoveContext()
		}
		return 0
	}))
	L.Call(1, 0)
}

var moduleNameRe = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)

// require returns the kumo module for "kumo", and otherwise loads the
// module NAME (dots for subdirectories) from NAME.lua in the script's
// directory, once.
func (ld *loader) require(L *glua.LState) int {
	name := L.CheckString(1)
	if v, ok := ld.modules[name]; ok {
		L.Push(v)
		return 1
	}
	if !moduleNameRe.MatchString(name) {
		L.RaiseError("require: %q is not a module name (letters, digits, _ and dots)", name)
	}
	file := filepath.Join(ld.dir, filepath.FromSlash(strings.ReplaceAll(name, ".", "/"))+".lua")
	src, err := os.ReadFile(file)
	if err != nil {
		L.RaiseError("require: module %q: %v", name, err)
	}
	fn, err := L.Load(bytes.NewReader(src), file)
	if err != nil {
		L.RaiseError("require: %v", err)
	}
	ld.modules[name] = glua.LTrue // a module that requires itself gets true, as in Lua
	L.Push(fn)
	L.Push(glua.LString(name))
	L.Call(1, 1)
	v := L.Get(-1)
	if v == glua.LNil {
		v = glua.LTrue
	}
	ld.modules[name] = v
	L.Push(v)
	return 1
}
