package trace

import (
	"net/netip"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	ev := Event{Side: Server, Peer: netip.MustParseAddrPort("192.0.2.7:4000"), Listen: "relay-in"}
	out := Event{Side: Client, Domain: "Example.COM", Site: "mx1.example.com|mx2.example.com"}
	for _, c := range []struct {
		f    Filter
		ev   *Event
		want bool
	}{
		{Filter{}, &ev, true},
		{Filter{Side: Server}, &ev, true},
		{Filter{Side: Client}, &ev, false},
		{Filter{Peer: netip.MustParsePrefix("192.0.2.0/24")}, &ev, true},
		{Filter{Peer: netip.MustParsePrefix("198.51.100.0/24")}, &ev, false},
		{Filter{Listener: "relay-in"}, &ev, true},
		{Filter{Listener: "other"}, &ev, false},
		{Filter{Side: Client, Domain: "example.com"}, &out, true},
		{Filter{Side: Client, Domain: "example.org"}, &out, false},
		{Filter{Side: Client, Site: "MX2.example"}, &out, true},
		{Filter{Side: Client, Site: "mx3"}, &out, false},
	} {
		if got := c.f.Match(c.ev); got != c.want {
			t.Errorf("%+v matches %+v: %v, want %v", c.f, c.ev, got, c.want)
		}
	}
}

// TestSlowSubscriberDrops: a subscriber that does not read loses events,
// counted and reported with the next event it gets; publishing never waits.
func TestSlowSubscriberDrops(t *testing.T) {
	h := NewHub(nil)
	if h.Active() || h.Gen() != 0 {
		t.Fatal("a new hub is active")
	}
	s := h.Subscribe(Filter{Side: Server}, 2)
	if !h.Active() || h.Gen() == 0 {
		t.Fatal("hub with a subscriber is not active")
	}
	for i := 0; i < 5; i++ {
		h.Publish(Event{Side: Server, Kind: Command, Text: "NOOP"})
	}
	h.Publish(Event{Side: Client, Kind: Command}) // not matched: not counted
	if d := s.Dropped(); d != 3 {
		t.Errorf("dropped %d, want 3", d)
	}
	<-s.Events()
	<-s.Events()
	h.Publish(Event{Side: Server, Kind: Reply, Text: "250 OK"})
	if ev := <-s.Events(); ev.Dropped != 3 || ev.Text != "250 OK" || ev.Time.IsZero() {
		t.Errorf("next event %+v, want Dropped 3", ev)
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("dropped %d after the report, want 0", d)
	}
	g := h.Gen()
	s.Close()
	s.Close()
	if h.Active() || h.Gen() == g {
		t.Error("hub still active after Close")
	}
	var nilHub *Hub
	if nilHub.Active() || nilHub.Gen() != 0 {
		t.Error("nil hub active")
	}
}
