package lua

// The pool of Lua states behind *Hooks, and the engine's calls into the
// script's event handlers.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gannet/engine/policy"
	"gannet/mailaddr"
	"gannet/smtpwire"

	glua "github.com/yuin/gopher-lua"
)

// eventAliases are KumoMTA's names of the events Gannet runs, and Gannet's
// own names, by the name a script may give kumo.on.
var eventAliases = map[string]string{
	EventGreeting:                  EventGreeting,
	"smtp_server_ehlo":             EventGreeting,
	EventMessage:                   EventMessage,
	"smtp_server_message_received": EventMessage,
	EventDeliveryResult:            EventDeliveryResult,
	EventHTTPRequest:               EventHTTPRequest,
	EventAuth:                      EventAuth,
	"smtp_server_auth_plain":       EventAuth,
	EventQueueConfig:               EventQueueConfig,
	EventEgressPath:                EventEgressPath,
}

// handlerKind says how a handler is called when an event has two forms.
type handlerKind uint8

const (
	// seedStyle: the handler gets Gannet's (domain, meta) or the event's
	// only form.
	seedStyle handlerKind = iota
	// msgObject: a smtp_message_received handler of one parameter gets
	// KumoMTA's message object.
	msgObject
	// authPlain: KumoMTA's smtp_server_auth_plain(authz, authc,
	// password, conn_meta).
	authPlain
)

// handler is one kumo.on registration of a state.
type handler struct {
	fn   *glua.LFunction
	kind handlerKind
}

// addHandler records fn for event in run mode.
func (ld *loader) addHandler(event string, fn *glua.LFunction) {
	ev, ok := eventAliases[event]
	if !ok {
		return
	}
	kind := seedStyle
	switch {
	case event == "smtp_server_auth_plain":
		kind = authPlain
	case ev == EventMessage && fn.Proto != nil && fn.Proto.NumParameters == 1:
		kind = msgObject
	}
	ld.handlers[ev] = append(ld.handlers[ev], handler{fn, kind})
}

// maxCached bounds the answers of get_queue_config and
// get_egress_path_config kept: a full cache is emptied.
const maxCached = 4096

// Hooks runs a script's event handlers (Script.Start). Its methods may be
// called from many goroutines at once: each call takes a Lua state of its
// own from the pool.
type Hooks struct {
	script  *Script
	keys    keyLines
	host    Host
	log     *slog.Logger
	timeout time.Duration
	errs    func(event string)
	base    interface {
		Decide(m policy.Message) (policy.Decision, error)
	}
	budget time.Duration // of a state's top-level run
	idle   chan *loader
	dog    *watchdog // the hook budget of pool states (watchdog.go)
	closed atomic.Bool
	events map[string]bool // the canonical events with handlers
	memo   *memoStore

	cacheMu sync.Mutex
	queues  map[string]cached[QueueConfig]
	egress  map[string]cached[EgressPath]
}

type cached[T any] struct {
	v  T
	ok bool
}

// Start returns the script's hooks, ready to run: one Lua state is built
// at once, so that a script that fails in run mode fails here.
func (s *Script) Start(opts Options) (*Hooks, error) { return s.start(opts, Budget) }

// start is Start with the budget of a state's top-level run.
func (s *Script) start(opts Options, budget time.Duration) (*Hooks, error) {
	if s.src == nil {
		return nil, errors.New("policy script: not loaded from a file")
	}
	h := &Hooks{
		script:  s,
		keys:    scanKeyLines(s.src, s.path),
		host:    opts.Host,
		log:     opts.Log,
		timeout: opts.Timeout,
		errs:    opts.Errors,
		base:    opts.Base,
		idle:    make(chan *loader, defaultMaxIdleStates),
		memo:    newMemoStore(),
		queues:  map[string]cached[QueueConfig]{},
		egress:  map[string]cached[EgressPath]{},
		budget:  budget,
	}
	if h.host == nil {
		h.host = nopHost{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.timeout <= 0 {
		h.timeout = DefaultHookTimeout
	}
	h.dog = newWatchdog(h.timeout)
	st, err := h.newState()
	if err != nil {
		return nil, err
	}
	h.events = map[string]bool{}
	for ev, hs := range st.handlers {
		h.events[ev] = len(hs) > 0
	}
	h.put(st)
	return h, nil
}

// nopHost is the Host of Options without one.
type nopHost struct{}

func (nopHost) LimitSending(string, float64)            {}
func (nopHost) AdjustDomainRate(string, float64)        {}
func (nopHost) Suspend(Selector, string, time.Duration) {}
func (nopHost) Bounce(Selector, string, time.Duration)  {}
func (nopHost) CampaignEvent(campaign, event string)    {}

// newState builds a state: a fresh sandbox that runs the script's top
// level in run mode, within the load budget.
func (h *Hooks) newState() (*loader, error) {
	// No configuration: the configuration functions do nothing in run
	// mode.
	ld := &loader{
		path:     h.script.path,
		dir:      filepath.Dir(h.script.path),
		keys:     h.keys,
		modules:  map[string]glua.LValue{},
		memo:     h.memo,
		h:        h,
		handlers: map[string][]handler{},
	}
	L := glua.NewState(glua.Options{SkipOpenLibs: true, CallStackSize: 200, RegistryMaxSize: 1 << 20, MinimizeStackMemory: true})
	ld.L = L
	ctx, cancel := context.WithTimeout(context.Background(), h.budget)
	defer cancel()
	L.SetContext(ctx)
	ld.openLibs(L)
	ld.newMetatables(L)
	fn, err := L.Load(bytes.NewReader(h.script.src), h.script.path)
	if err == nil {
		L.Push(fn)
		err = L.PCall(0, 0, nil)
	}
	L.RemoveContext()
	if err != nil {
		L.Close()
		return nil, ld.luaError(err, ctx, h.budget)
	}
	if !h.closed.Load() {
		ld.budget = h.dog.track()
	}
	return ld, nil
}

// closeState closes a state that leaves the pool.
func (h *Hooks) closeState(st *loader) {
	if st.budget != nil {
		h.dog.forget(st.budget)
	}
	st.L.Close()
}

// get takes an idle state, or builds one.
func (h *Hooks) get() (*loader, error) {
	select {
	case st := <-h.idle:
		return st, nil
	default:
		return h.newState()
	}
}

// put keeps st for the next call, or closes it when enough are idle.
func (h *Hooks) put(st *loader) {
	if !h.closed.Load() {
		select {
		case h.idle <- st:
			return
		default:
		}
	}
	h.closeState(st)
}

// Has reports whether the script registered a handler for event (a
// KumoMTA alias names its Gannet event).
func (h *Hooks) Has(event string) bool {
	ev, ok := eventAliases[event]
	return ok && h.events[ev]
}

// Close closes the idle states; the hooks may still be called (each call
// then builds a state of its own and closes it).
func (h *Hooks) Close() {
	h.closed.Store(true)
	for {
		select {
		case st := <-h.idle:
			h.closeState(st)
		default:
			h.dog.close()
			return
		}
	}
}

// call is the state of one hook call: what the run-time functions read
// and set.
type call struct {
	event    string
	greeting *Greeting
	dec      *policy.Decision
	msg      *policy.Message
	reject   *smtpwire.Reply
	// meta holds the msg object's set_meta keys other than tenant and
	// campaign (queue, routing_domain, …) for the call.
	meta map[string]glua.LValue
}

// run calls fn with a state of the pool, within the hook budget. A
// failure is logged and counted, and the state is discarded.
func (h *Hooks) run(ctx context.Context, c *call, fn func(st *loader) error) error {
	st, err := h.get()
	if err != nil {
		h.fail(c.event, err, false)
		return fmt.Errorf("policy script: %s: %w", c.event, err)
	}
	tctx := context.Context(nil)
	if b := st.budget; b != nil {
		b.deadline.Store(time.Now().Add(h.timeout).UnixNano())
		tctx = b.ctx
	} else { // a state built after Close: no watchdog
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	st.L.SetContext(tctx)
	st.cur = c
	err = fn(st)
	st.cur = nil
	st.L.RemoveContext()
	if st.budget != nil {
		st.budget.deadline.Store(0)
	}
	late := tctx.Err() != nil && ctx.Err() == nil
	if late && err == nil {
		// The watchdog fired as the call ended: the state cannot run
		// again, but the call's work is done.
		h.closeState(st)
		return nil
	}
	if err != nil && c.reject != nil && !late {
		// kumo.reject ended the handler: an answer, not a failure.
		st.L.SetTop(0)
		h.put(st)
		return nil
	}
	if err != nil {
		h.closeState(st)
		msg := errText(err)
		if late {
			msg = fmt.Sprintf("%s (ran past its budget of %s)", msg, h.timeout)
		}
		h.fail(c.event, errors.New(msg), late)
		return fmt.Errorf("policy script: %s: %s", c.event, msg)
	}
	h.put(st)
	return nil
}

// errText is the message of a Lua error: "relay.lua:12: what".
func errText(err error) string {
	var ae *glua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		return ae.Object.String()
	}
	return err.Error()
}

// fail logs and counts a failed hook call.
func (h *Hooks) fail(event string, err error, timedOut bool) {
	msg := err.Error()
	pos := ""
	if m := runtimeErrRe.FindStringSubmatch(msg); m != nil {
		pos, msg = m[1]+":"+m[2], m[3]
	}
	if timedOut {
		h.log.Warn("policy script hook ran past its budget", "event", event, "script", pos, "error", msg)
	} else {
		h.log.Error("policy script hook failed", "event", event, "script", pos, "error", msg)
	}
	if h.errs != nil {
		h.errs(event)
	}
}

// callHandler calls one handler with args and returns its first result.
func callHandler(L *glua.LState, fn *glua.LFunction, args ...glua.LValue) (glua.LValue, error) {
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	if err := L.PCall(len(args), 1, nil); err != nil {
		return glua.LNil, err
	}
	v := L.Get(-1)
	L.Pop(1)
	return v, nil
}

// each calls fn for each handler of the call's event, in registration
// order, until it returns stop or an error.
func (h *Hooks) each(ctx context.Context, c *call, fn func(ld *loader, hd handler) (stop bool, err error)) error {
	return h.run(ctx, c, func(ld *loader) error {
		for _, hd := range ld.handlers[c.event] {
			stop, err := fn(ld, hd)
			if err != nil {
				return err
			}
			if stop {
				break
			}
		}
		return nil
	})
}

// optString is s as a Lua value: nil when empty.
func optString(s string) glua.LValue {
	if s == "" {
		return glua.LNil
	}
	return glua.LString(s)
}

// Greeting runs smtp_server_greeting(domain, meta).
func (h *Hooks) Greeting(ctx context.Context, m GreetingMeta) (Greeting, error) {
	var g Greeting
	if !h.events[EventGreeting] {
		return g, nil
	}
	c := &call{event: EventGreeting, greeting: &g}
	err := h.each(ctx, c, func(ld *loader, hd handler) (bool, error) {
		L := ld.L
		meta := L.CreateTable(0, 4)
		meta.RawSetString("tenant", optString(m.Tenant))
		meta.RawSetString("auth_user", optString(m.AuthUser))
		meta.RawSetString("peer", optString(m.Peer))
		meta.RawSetString("listener", optString(m.Listener))
		_, err := callHandler(L, hd.fn, glua.LString(m.Domain), meta)
		return false, err
	})
	if err != nil {
		return Greeting{}, err
	}
	g.Reject = c.reject
	return g, nil
}

// Decide is the message policy: opts.Base's decision (or an empty one with
// the message's tenant, campaign and priority), then the
// smtp_message_received handlers. A kumo.reject returns an
// *smtpwire.Error with its reply.
func (h *Hooks) Decide(m policy.Message) (policy.Decision, error) {
	var d policy.Decision
	if h.base != nil {
		var err error
		if d, err = h.base.Decide(m); err != nil {
			return d, err
		}
	} else {
		d = policy.Decision{Tenant: m.Tenant, Campaign: m.Campaign, Priority: m.Priority}
	}
	if !h.events[EventMessage] {
		return d, nil
	}
	c := &call{event: EventMessage, dec: &d, msg: &m}
	var meta, obj glua.LValue
	domain := ""
	if len(m.Recipients) > 0 {
		domain = mailaddr.Domain(m.Recipients[0])
	}
	err := h.each(context.Background(), c, func(ld *loader, hd handler) (bool, error) {
		L := ld.L
		var err error
		if hd.kind == msgObject {
			if obj == nil {
				ud := L.NewUserData()
				ud.Value = c
				ud.Metatable = ld.msgMeta
				obj = ud
			}
			_, err = callHandler(L, hd.fn, obj)
		} else {
			if meta == nil {
				meta = ld.view(&messageRecord{ld: ld, m: &m, d: &d})
			}
			_, err = callHandler(L, hd.fn, glua.LString(domain), meta)
		}
		return false, err
	})
	if err != nil {
		return policy.Decision{}, err
	}
	if c.reject != nil {
		return policy.Decision{}, &smtpwire.Error{Reply: *c.reject}
	}
	return d, nil
}

// DeliveryResult runs smtp_delivery_result(result, meta).
func (h *Hooks) DeliveryResult(ctx context.Context, r DeliveryResult, m DeliveryMeta) error {
	if !h.events[EventDeliveryResult] {
		return nil
	}
	c := &call{event: EventDeliveryResult}
	var res, meta *glua.LUserData
	return h.each(ctx, c, func(ld *loader, hd handler) (bool, error) {
		L := ld.L
		if res == nil {
			res = ld.view(resultRecord{&r})
			meta = ld.view(deliveryRecord{&m})
		}
		_, err := callHandler(L, hd.fn, res, meta)
		return false, err
	})
}

// HTTPRequest runs http_request(request): the first handler that returns
// a table answers the request ({status = 401, body = "…"}; a table body is
// sent as JSON); nil, nil when every handler returned nil.
func (h *Hooks) HTTPRequest(ctx context.Context, r HTTPRequest) (*HTTPResponse, error) {
	if !h.events[EventHTTPRequest] {
		return nil, nil
	}
	c := &call{event: EventHTTPRequest}
	var req *glua.LTable
	var resp *HTTPResponse
	err := h.each(ctx, c, func(ld *loader, hd handler) (bool, error) {
		L := ld.L
		if req == nil {
			hdrs := L.CreateTable(0, len(r.Headers))
			for k, v := range r.Headers {
				hdrs.RawSetString(k, glua.LString(v))
			}
			hdrs.Metatable = ld.headerMeta
			req = L.CreateTable(0, 4)
			req.RawSetString("method", glua.LString(r.Method))
			req.RawSetString("path", glua.LString(r.Path))
			req.RawSetString("headers", hdrs)
			req.RawSetString("remote", optString(r.Remote))
		}
		v, err := callHandler(L, hd.fn, req)
		if err != nil || v == glua.LNil {
			return false, err
		}
		resp, err = httpResponse(v)
		if err != nil {
			return true, fmt.Errorf("%s: http_request: %v", fnPos(hd.fn), err)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// httpResponse reads the table a http_request handler returned.
func httpResponse(v glua.LValue) (*HTTPResponse, error) {
	t, ok := v.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("returned a %s, not nil or a table {status, body}", v.Type())
	}
	resp := &HTTPResponse{Status: 200}
	var bad error
	t.ForEach(func(k, val glua.LValue) {
		if bad != nil {
			return
		}
		switch k.String() {
		case "status":
			n, ok := val.(glua.LNumber)
			if !ok || n < 100 || n > 599 || float64(n) != float64(int(n)) {
				bad = fmt.Errorf("status must be an HTTP status code, not %s", val)
				return
			}
			resp.Status = int(n)
		case "body":
			switch b := val.(type) {
			case glua.LString:
				resp.Body = []byte(b)
			case *glua.LTable:
				gv, err := toGo(nil, b)
				if err != nil {
					bad = fmt.Errorf("body: %v", err)
					return
				}
				resp.Body, bad = json.Marshal(gv)
				resp.JSON = true
			default:
				bad = fmt.Errorf("body must be a string or a table, not a %s", val.Type())
			}
		default:
			bad = fmt.Errorf("unknown key %q in the answer (status, body)", k.String())
		}
	})
	return resp, bad
}

// Auth runs smtp_server_auth(user, password, meta) (and KumoMTA's
// smtp_server_auth_plain(authz, authc, password, conn_meta)): the first
// handler that returns true, false or {ok = …, tenant = …} answers; nil
// goes on to the next.
func (h *Hooks) Auth(ctx context.Context, user, password string, m AuthMeta) (AuthResult, error) {
	var res AuthResult
	if !h.events[EventAuth] {
		return res, nil
	}
	c := &call{event: EventAuth}
	var meta *glua.LTable
	err := h.each(ctx, c, func(ld *loader, hd handler) (bool, error) {
		L := ld.L
		if meta == nil {
			meta = L.CreateTable(0, 3)
			meta.RawSetString("listener", optString(m.Listener))
			meta.RawSetString("peer", optString(m.Peer))
			meta.RawSetString("mechanism", optString(m.Mechanism))
		}
		var v glua.LValue
		var err error
		if hd.kind == authPlain {
			v, err = callHandler(L, hd.fn, glua.LString(""), glua.LString(user), glua.LString(password), meta)
		} else {
			v, err = callHandler(L, hd.fn, glua.LString(user), glua.LString(password), meta)
		}
		if err != nil {
			return false, err
		}
		switch v := v.(type) {
		case *glua.LNilType:
			return false, nil
		case glua.LBool:
			res = AuthResult{Handled: true, OK: bool(v)}
		case *glua.LTable:
			res = AuthResult{Handled: true, OK: glua.LVAsBool(v.RawGetString("ok"))}
			if t, ok := v.RawGetString("tenant").(glua.LString); ok {
				res.Tenant = string(t)
			}
		default:
			return true, fmt.Errorf("%s: smtp_server_auth: the handler returned a %s, not true, false, {ok, tenant} or nil",
				fnPos(hd.fn), v.Type())
		}
		return true, nil
	})
	if err != nil {
		return AuthResult{}, err
	}
	return res, nil
}

// QueueConfig runs get_queue_config(domain, tenant, campaign,
// routing_domain); false when no handler answered. Answers (and the lack
// of one) are cached per arguments; errors are not.
func (h *Hooks) QueueConfig(domain, tenant, campaign, routingDomain string) (QueueConfig, bool, error) {
	if !h.events[EventQueueConfig] {
		return QueueConfig{}, false, nil
	}
	key := domain + "\x00" + tenant + "\x00" + campaign + "\x00" + routingDomain
	if v, ok := lookup(h, h.queues, key); ok {
		return v.v, v.ok, nil
	}
	var res cached[QueueConfig]
	c := &call{event: EventQueueConfig}
	err := h.each(context.Background(), c, func(ld *loader, hd handler) (bool, error) {
		v, err := callHandler(ld.L, hd.fn, optString(domain), optString(tenant), optString(campaign), optString(routingDomain))
		if err != nil || v == glua.LNil {
			return false, err
		}
		qc, ok := userValue[*QueueConfig](v)
		if !ok {
			return true, fmt.Errorf("%s: get_queue_config: the handler returned a %s, not kumo.make_queue_config{…} or nil",
				fnPos(hd.fn), v.Type())
		}
		res = cached[QueueConfig]{*qc, true}
		return true, nil
	})
	if err != nil {
		return QueueConfig{}, false, err
	}
	store(h, h.queues, key, res)
	return res.v, res.ok, nil
}

// EgressPath runs get_egress_path_config(domain, egress_source,
// site_name); false when no handler answered. Cached as QueueConfig is.
func (h *Hooks) EgressPath(domain, source, site string) (EgressPath, bool, error) {
	if !h.events[EventEgressPath] {
		return EgressPath{}, false, nil
	}
	key := domain + "\x00" + source + "\x00" + site
	if v, ok := lookup(h, h.egress, key); ok {
		return v.v, v.ok, nil
	}
	var res cached[EgressPath]
	c := &call{event: EventEgressPath}
	err := h.each(context.Background(), c, func(ld *loader, hd handler) (bool, error) {
		v, err := callHandler(ld.L, hd.fn, optString(domain), optString(source), optString(site))
		if err != nil || v == glua.LNil {
			return false, err
		}
		ep, ok := userValue[*EgressPath](v)
		if !ok {
			return true, fmt.Errorf("%s: get_egress_path_config: the handler returned a %s, not kumo.make_egress_path{…} or nil",
				fnPos(hd.fn), v.Type())
		}
		res = cached[EgressPath]{*ep, true}
		return true, nil
	})
	if err != nil {
		return EgressPath{}, false, err
	}
	store(h, h.egress, key, res)
	return res.v, res.ok, nil
}

func lookup[T any](h *Hooks, m map[string]cached[T], key string) (cached[T], bool) {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	v, ok := m[key]
	return v, ok
}

func store[T any](h *Hooks, m map[string]cached[T], key string, v cached[T]) {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	if len(m) >= maxCached {
		clear(m)
	}
	m[key] = v
}

// userValue returns the Go value of the userdata v when it is a T.
func userValue[T any](v glua.LValue) (T, bool) {
	var zero T
	ud, ok := v.(*glua.LUserData)
	if !ok {
		return zero, false
	}
	t, ok := ud.Value.(T)
	return t, ok
}

// fnPos is "file:line" of the definition of the Lua function fn.
func fnPos(fn *glua.LFunction) string {
	if fn.Proto == nil {
		return "[G]"
	}
	return fmt.Sprintf("%s:%d", fn.Proto.SourceName, fn.Proto.LineDefined)
}
