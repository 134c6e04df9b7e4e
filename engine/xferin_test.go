package engine

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"gannet/engine/config"
	"gannet/engine/handover"
	"gannet/engine/inbound"
	"gannet/smtpwire"
)

const testXferSecret = "engine-test-xfer-secret-0123"

func xferEngine(t *testing.T) *Engine {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte("[xfer]\nsecret = \""+testXferSecret+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestXferArrival: from a session logged in as another node, a field that
// verifies gives the message its tenant and campaign; one that does not
// is refused with 550 5.7.1, one past MaxHops with 554 5.4.6 (RFC 3463's
// routing loop). From any other session the field is stripped and claims
// nothing.
func TestXferArrival(t *testing.T) {
	e := xferEngine(t)
	const content = "From: a@src.test\r\nSubject: hi\r\n\r\nbody\r\n"
	meta := handover.Meta{Node: "node-a", From: "127.0.0.1:2525", ID: "m1", Tenant: "acme", Campaign: "spring",
		Received: time.Unix(1765140000, 0).UTC(), Hops: 1, Signed: true}
	good := handover.Prepend(testXferSecret, meta, []byte(content))
	hops := meta
	hops.Hops = handover.MaxHops + 1
	node := &inbound.Incoming{AuthUser: handover.User, Peer: netip.MustParseAddrPort("127.0.0.1:40000")}
	client := &inbound.Incoming{AuthUser: "app", Peer: netip.MustParseAddrPort("127.0.0.1:40001")}

	for _, c := range []struct {
		name     string
		in       *inbound.Incoming
		body     []byte
		code     int
		enhanced string
		xfer     bool
		stripped bool
	}{
		{"node, verified", node, good, 0, "", true, false},
		{"node, other secret", node, handover.Prepend("another-secret-0123456789", meta, []byte(content)), 550, "5.7.1", false, false},
		{"node, too many hops", node, handover.Prepend(testXferSecret, hops, []byte(content)), 554, "5.4.6", false, false},
		{"node, no field", node, []byte(content), 0, "", false, false},
		{"client claiming to be a node", client, good, 0, "", false, true},
	} {
		a := arrival{}
		a.msg.Body = c.body
		r := e.xferArrival(c.in, &a)
		switch {
		case c.code == 0 && r != nil, c.code != 0 && (r == nil || r.Code != c.code || r.Enhanced != c.enhanced):
			t.Errorf("%s: reply %+v, want %d %s", c.name, r, c.code, c.enhanced)
		case c.xfer != (a.xfer != nil):
			t.Errorf("%s: xfer %+v", c.name, a.xfer)
		case c.xfer && (a.xfer.Tenant != "acme" || a.xfer.Campaign != "spring" || a.xfer.ID != "m1" || a.msg.Tenant != "acme"):
			t.Errorf("%s: xfer %+v, tenant %q", c.name, a.xfer, a.msg.Tenant)
		case c.stripped && string(a.msg.Body) != content:
			t.Errorf("%s: body %q, want the field stripped", c.name, a.msg.Body)
		}
	}
}

// TestXferLogin: the reserved name logs in with the password derived from
// [xfer] secret (AUTH PLAIN), not with another, and not at all
// without a secret.
func TestXferLogin(t *testing.T) {
	e := xferEngine(t)
	a := authenticator{conf: func() *config.Config { return e.cfg }}
	login := func(pass string) bool {
		user, _, ok := a.Authenticate(context.Background(), smtpwire.AuthCredentials{Mechanism: "PLAIN", Username: handover.User, Password: pass})
		return ok && user == handover.User
	}
	if !login(handover.Password(testXferSecret)) || login("guess") || login(testXferSecret) {
		t.Error("PLAIN: the derived password must log in, nothing else")
	}
	off := authenticator{conf: func() *config.Config { return config.Default() }}
	if _, _, ok := off.Authenticate(context.Background(), smtpwire.AuthCredentials{Mechanism: "PLAIN", Username: handover.User,
		Password: handover.Password("")}); ok {
		t.Error("the reserved name logs in without [xfer] secret")
	}
}
