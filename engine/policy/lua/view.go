package lua

import (
	"bytes"

	"gannet/engine/policy"
	"gannet/msgheader"

	glua "github.com/yuin/gopher-lua"
)

// A view is a record a hook gets from Gannet (a message's meta, a delivery
// result and its meta) as a userdata whose fields are made when the script
// reads them: a Lua table of every field costs a map, a key list and a
// boxed value per field, per message, though a script reads two or three.
// Reading a field, pairs() over the view and setting a field of one's own
// work as on a table; type() says "userdata". A message's headers are a
// view too (headersRecord): lookups ignore case.

// record is what a view shows: its field names and how to make each.
type record interface {
	keys() []string
	field(L *glua.LState, key string) glua.LValue
}

// viewBox is a view's userdata value: the record, and the fields the
// script set on it.
type viewBox struct {
	rec   record
	extra *glua.LTable
}

// newViewMeta builds the state's metatable of views.
func (ld *loader) newViewMeta(L *glua.LState) *glua.LTable {
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(viewIndex))
	mt.RawSetString("__newindex", L.NewFunction(viewNewIndex))
	mt.RawSetString("__pairs", L.NewFunction(ld.viewPairs))
	mt.RawSetString("__tostring", L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString("record"))
		return 1
	}))
	return mt
}

// view wraps rec for a hook.
func (ld *loader) view(rec record) *glua.LUserData {
	ud := ld.L.NewUserData()
	ud.Value = &viewBox{rec: rec}
	ud.Metatable = ld.viewMeta
	return ud
}

func checkView(L *glua.LState) *viewBox {
	ud := L.CheckUserData(1)
	b, ok := ud.Value.(*viewBox)
	if !ok {
		L.ArgError(1, "not a record")
	}
	return b
}

func viewIndex(L *glua.LState) int {
	b := checkView(L)
	k := L.Get(2)
	if b.extra != nil {
		if v := b.extra.RawGet(k); v != glua.LNil {
			L.Push(v)
			return 1
		}
	}
	if s, ok := k.(glua.LString); ok {
		L.Push(b.rec.field(L, string(s)))
		return 1
	}
	L.Push(glua.LNil)
	return 1
}

func viewNewIndex(L *glua.LState) int {
	b := checkView(L)
	if b.extra == nil {
		b.extra = L.NewTable()
	}
	b.extra.RawSet(L.CheckAny(2), L.CheckAny(3))
	return 0
}

// viewPairs is __pairs: a table of every field, walked by next.
func (ld *loader) viewPairs(L *glua.LState) int {
	b := checkView(L)
	t := L.NewTable()
	for _, k := range b.rec.keys() {
		if v := b.rec.field(L, k); v != glua.LNil {
			t.RawSetString(k, v)
		}
	}
	if b.extra != nil {
		b.extra.ForEach(func(k, v glua.LValue) { t.RawSet(k, v) })
	}
	L.Push(ld.next)
	L.Push(t)
	L.Push(glua.LNil)
	return 3
}

// messageRecord is smtp_message_received's meta: the message, and the
// decision so far (tenant, campaign and priority as earlier handlers set
// them).
type messageRecord struct {
	ld      *loader
	m       *policy.Message
	d       *policy.Decision
	headers glua.LValue // made once
	rcpts   glua.LValue
}

var messageKeys = []string{"headers", "sender", "recipients", "tenant", "campaign", "size", "listener", "priority"}

func (r *messageRecord) keys() []string { return messageKeys }

func (r *messageRecord) field(L *glua.LState, key string) glua.LValue {
	switch key {
	case "headers":
		if r.headers == nil {
			r.headers = r.ld.view(headersRecord{bytes.Clone(msgheader.Section(r.m.Body))})
		}
		return r.headers
	case "sender":
		return glua.LString(r.m.Sender)
	case "recipients":
		if r.rcpts == nil {
			t := L.CreateTable(len(r.m.Recipients), 0)
			for _, a := range r.m.Recipients {
				t.Append(glua.LString(a))
			}
			r.rcpts = t
		}
		return r.rcpts
	case "tenant":
		return optString(r.d.Tenant)
	case "campaign":
		return optString(r.d.Campaign)
	case "size":
		return glua.LNumber(len(r.m.Body))
	case "listener":
		return optString(r.m.Listener)
	case "priority":
		return glua.LNumber(r.d.Priority)
	}
	return glua.LNil
}

// headersRecord is a message's headers: the first value of each field,
// unfolded, looked up without regard to case. It holds a copy of the
// header section, so a script that keeps it past the call still reads its
// own message (the body's buffer is reused once the message is spooled).
type headersRecord struct{ section []byte }

// keys lists each field name once, as first written.
func (r headersRecord) keys() []string {
	var names []string
next:
	for f := range msgheader.Fields(r.section) {
		if f.Name == nil {
			continue
		}
		for _, n := range names {
			if f.Is(n) {
				continue next
			}
		}
		names = append(names, string(f.Name))
	}
	return names
}

func (r headersRecord) field(_ *glua.LState, key string) glua.LValue {
	if v, ok := msgheader.Get(r.section, key); ok {
		return glua.LString(v)
	}
	return glua.LNil
}

// resultRecord is smtp_delivery_result's result.
type resultRecord struct{ r *DeliveryResult }

var resultKeys = []string{"code", "enhanced_code", "text", "kind"}

func (r resultRecord) keys() []string { return resultKeys }

func (r resultRecord) field(_ *glua.LState, key string) glua.LValue {
	switch key {
	case "code":
		return glua.LNumber(r.r.Code)
	case "enhanced_code":
		return optString(r.r.Enhanced)
	case "text":
		return glua.LString(r.r.Text)
	case "kind":
		return optString(r.r.Kind)
	}
	return glua.LNil
}

// deliveryRecord is smtp_delivery_result's meta.
type deliveryRecord struct{ m *DeliveryMeta }

var deliveryKeys = []string{"domain", "site", "tenant", "campaign", "attempts", "id", "recipient"}

func (r deliveryRecord) keys() []string { return deliveryKeys }

func (r deliveryRecord) field(_ *glua.LState, key string) glua.LValue {
	switch key {
	case "domain":
		return optString(r.m.Domain)
	case "site":
		return optString(r.m.Site)
	case "tenant":
		return optString(r.m.Tenant)
	case "campaign":
		return optString(r.m.Campaign)
	case "attempts":
		return glua.LNumber(r.m.Attempts)
	case "id":
		return optString(r.m.ID)
	case "recipient":
		return optString(r.m.Recipient)
	}
	return glua.LNil
}
