package lua

// The helpers a script may call at load and in its hooks: kumo.json_encode,
// kumo.json_decode (kumo.json_parse), kumo.read_file, kumo.string.split and
// kumo.memoize.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	glua "github.com/yuin/gopher-lua"
)

const (
	// maxReadFile bounds what kumo.read_file returns.
	maxReadFile = 16 << 20
	// maxValueDepth bounds the nesting of the tables converted to Go
	// values (JSON, memoize): a table that holds itself is an error.
	maxValueDepth = 64
	// Defaults of kumo.memoize.
	defaultMemoTTL      = 5 * time.Minute
	defaultMemoCapacity = 1000
	// maxMemoSites bounds the memoize caches of a store.
	maxMemoSites = 1024
)

// openHelpers sets the helper functions of the kumo table m.
func (ld *loader) openHelpers(L *glua.LState, m *glua.LTable) {
	m.RawSetString("json_encode", L.NewFunction(jsonEncode))
	m.RawSetString("json_decode", L.NewFunction(jsonDecode))
	m.RawSetString("json_parse", L.NewFunction(jsonDecode))
	m.RawSetString("read_file", L.NewFunction(ld.readFile))
	m.RawSetString("memoize", L.NewFunction(ld.memoize))
	str := L.NewTable()
	str.RawSetString("split", L.NewFunction(split))
	m.RawSetString("string", str)
}

// jsonEncode is kumo.json_encode(v): v as JSON. A table whose keys are
// 1..n is an array; other tables are objects with string keys (numbers
// are written as strings); an empty table is {}.
func jsonEncode(L *glua.LState) int {
	v, err := toGo(L.Context(), L.CheckAny(1))
	if err != nil {
		L.RaiseError("kumo.json_encode: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		L.RaiseError("kumo.json_encode: %v", err)
	}
	L.Push(glua.LString(b))
	return 1
}

// jsonDecode is kumo.json_decode(s): the value of the JSON text s; null is
// nil.
func jsonDecode(L *glua.LState) int {
	s := L.CheckString(1)
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		L.RaiseError("kumo.json_decode: %v", err)
	}
	L.Push(toLua(L, v))
	return 1
}

// toGo converts a Lua value to nil, bool, float64, string, []any or
// map[string]any. Functions, userdata and threads are errors, and so are
// tables nested deeper than maxValueDepth or holding more than
// maxValueNodes values in all (a table may hold another many times).
// The conversion stops when ctx (the running code's budget; may be nil)
// ends.
func toGo(ctx context.Context, v glua.LValue) (any, error) {
	c := converter{ctx: ctx}
	return c.toGo(v, 0)
}

// maxValueNodes bounds the values one toGo converts.
const maxValueNodes = 1 << 18

type converter struct {
	nodes int
	ctx   context.Context
}

func (c *converter) toGo(v glua.LValue, depth int) (any, error) {
	if c.nodes++; c.nodes > maxValueNodes {
		return nil, fmt.Errorf("more than %d values", maxValueNodes)
	}
	if c.nodes%1024 == 0 && c.ctx != nil && c.ctx.Err() != nil {
		return nil, c.ctx.Err()
	}
	switch v := v.(type) {
	case *glua.LNilType:
		return nil, nil
	case glua.LBool:
		return bool(v), nil
	case glua.LNumber:
		f := float64(v)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%v is not a finite number", v)
		}
		return f, nil
	case glua.LString:
		return string(v), nil
	case *glua.LTable:
		if depth >= maxValueDepth {
			return nil, errors.New("tables nested too deep (or a table holds itself)")
		}
		n := v.Len()
		count := tableCount(v)
		if n > 0 && n == count {
			arr := make([]any, n)
			for i := range arr {
				e, err := c.toGo(v.RawGetInt(i+1), depth+1)
				if err != nil {
					return nil, err
				}
				arr[i] = e
			}
			return arr, nil
		}
		obj := make(map[string]any, count)
		var bad error
		v.ForEach(func(k, e glua.LValue) {
			if bad != nil {
				return
			}
			var key string
			switch k := k.(type) {
			case glua.LString:
				key = string(k)
			case glua.LNumber:
				key = k.String()
			default:
				bad = fmt.Errorf("a table key must be a string or a number, not a %s", k.Type())
				return
			}
			ge, err := c.toGo(e, depth+1)
			if err != nil {
				bad = err
				return
			}
			obj[key] = ge
		})
		if bad != nil {
			return nil, bad
		}
		return obj, nil
	}
	return nil, fmt.Errorf("a %s cannot be converted", v.Type())
}

// toLua converts a value of toGo (or of encoding/json) to a fresh Lua
// value.
func toLua(L *glua.LState, v any) glua.LValue {
	switch v := v.(type) {
	case nil:
		return glua.LNil
	case bool:
		return glua.LBool(v)
	case float64:
		return glua.LNumber(v)
	case string:
		return glua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	}
	return glua.LNil
}

// readFile is kumo.read_file(path): the contents of the file at path,
// relative to the script's directory; a path that leaves the directory
// tree (also through a symbolic link) is refused, and so is a file larger
// than 16 MiB.
func (ld *loader) readFile(L *glua.LState) int {
	name := L.CheckString(1)
	b, err := readInTree(ld.dir, name)
	if err != nil {
		L.RaiseError("kumo.read_file: %v", err)
	}
	L.Push(glua.LString(b))
	return 1
}

// readInTree reads name (relative to dir, or absolute) when it lies in the
// directory tree of dir.
func readInTree(dir, name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("empty path")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if cause := errors.Unwrap(err); cause != nil {
			err = cause // without the absolute path
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s is outside the script's directory %s", name, root)
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxReadFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxReadFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxReadFile)
	}
	return b, nil
}

// split is kumo.string.split(s, sep): the parts of s between the
// occurrences of the plain (not pattern) separator sep, as a list.
func split(L *glua.LState) int {
	s := L.CheckString(1)
	sep := L.CheckString(2)
	if sep == "" {
		L.RaiseError("kumo.string.split: empty separator")
	}
	parts := strings.Split(s, sep)
	t := L.CreateTable(len(parts), 0)
	for _, p := range parts {
		t.Append(glua.LString(p))
	}
	L.Push(t)
	return 1
}

// memoStore holds the results of the memoized functions, by memoize site:
// in run mode one store is shared by the pool's states, so a result
// computed in one state serves all.
type memoStore struct {
	mu    sync.Mutex
	sites map[string]*memoSite
}

type memoSite struct {
	ttl      time.Duration
	capacity int
	entries  map[string]memoEntry
}

type memoEntry struct {
	v       any
	expires time.Time
}

func newMemoStore() *memoStore { return &memoStore{sites: map[string]*memoSite{}} }

// get returns the live result for key at site.
func (s *memoStore) get(site, key string, now time.Time) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.sites[site]
	if ms == nil {
		return nil, false
	}
	e, ok := ms.entries[key]
	if !ok || now.After(e.expires) {
		return nil, false
	}
	return e.v, true
}

// put stores v for key at site; a full site is emptied first.
func (s *memoStore) put(site string, ttl time.Duration, capacity int, key string, v any, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.sites[site]
	if ms == nil {
		if len(s.sites) >= maxMemoSites {
			clear(s.sites) // memoize called with ever new names
		}
		ms = &memoSite{ttl: ttl, capacity: capacity, entries: map[string]memoEntry{}}
		s.sites[site] = ms
	}
	if len(ms.entries) >= ms.capacity {
		clear(ms.entries)
	}
	ms.entries[key] = memoEntry{v: v, expires: now.Add(ms.ttl)}
}

// memoize is kumo.memoize(fn, {ttl = "5m", capacity = 1000, name = …}): a
// function that returns fn's (first) result for the same arguments from a
// cache for ttl, shared by the pool's states. The results and arguments
// must be plain values (nil, booleans, numbers, strings, tables of them).
// The cache is named by name, or else by the file:line of the memoize
// call.
func (ld *loader) memoize(L *glua.LState) int {
	fn := L.CheckFunction(1)
	ttl, capacity := defaultMemoTTL, defaultMemoCapacity
	file, line := callPos(L)
	site := file + ":" + strconv.Itoa(line)
	if L.GetTop() >= 2 && L.Get(2) != glua.LNil {
		opts := L.CheckTable(2)
		var bad error
		opts.ForEach(func(k, v glua.LValue) {
			if bad != nil {
				return
			}
			switch k.String() {
			case "ttl":
				d, err := durationValue(v)
				if err != nil || d <= 0 {
					bad = fmt.Errorf("ttl: must be a positive duration (\"5m\" or seconds), not %s", v)
				}
				ttl = d
			case "capacity":
				n, ok := v.(glua.LNumber)
				if !ok || n < 1 || n != glua.LNumber(math.Trunc(float64(n))) || n > 1<<24 {
					bad = fmt.Errorf("capacity: must be a whole number from 1, not %s", v)
				}
				capacity = int(n)
			case "name":
				site = "name:" + v.String()
			default:
				bad = fmt.Errorf("unknown key %q (ttl, capacity, name)", k.String())
			}
		})
		if bad != nil {
			L.RaiseError("kumo.memoize: %v", bad)
		}
	}
	store := ld.memo
	L.Push(L.NewFunction(func(L *glua.LState) int {
		n := L.GetTop()
		args := make([]any, n)
		for i := range args {
			v, err := toGo(L.Context(), L.Get(i+1))
			if err != nil {
				L.RaiseError("memoized function: argument %d: %v", i+1, err)
			}
			args[i] = v
		}
		kb, err := json.Marshal(args)
		if err != nil {
			L.RaiseError("memoized function: %v", err)
		}
		key := string(kb)
		now := time.Now()
		if v, ok := store.get(site, key, now); ok {
			L.Push(toLua(L, v))
			return 1
		}
		L.Push(fn)
		for i := 1; i <= n; i++ {
			L.Push(L.Get(i))
		}
		L.Call(n, 1)
		res := L.Get(-1)
		v, err := toGo(L.Context(), res)
		if err != nil {
			L.RaiseError("memoized function: result: %v", err)
		}
		store.put(site, ttl, capacity, key, v, now)
		return 1
	}))
	return 1
}

// durationValue reads a duration written as a string ("5m") or a number
// of seconds.
func durationValue(v glua.LValue) (time.Duration, error) {
	switch v := v.(type) {
	case glua.LString:
		return time.ParseDuration(string(v))
	case glua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%v is not a duration in seconds", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("must be a duration, not a %s", v.Type())
}
