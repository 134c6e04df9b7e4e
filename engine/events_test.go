package engine

import (
	"slices"
	"testing"

	"gannet/engine/config"
)

// TestEventSinkChangeNeedsRestart: a reload that changes [[event_sink]]
// says it needs a restart (the journals and shippers are built at start).
func TestEventSinkChangeNeedsRestart(t *testing.T) {
	parse := func(url string) *config.Config {
		c, err := config.Parse("events.toml", []byte(`[[event_sink]]
name = "crm"
kind = "webhook"
url = "`+url+`"
secret = "k"
`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := parse("http://127.0.0.1:9/a"), parse("http://127.0.0.1:9/b")
	if r := needsRestart(a, parse("http://127.0.0.1:9/a")); slices.Contains(r, "[[event_sink]]") {
		t.Errorf("the same sinks reported as changed: %v", r)
	}
	if r := needsRestart(a, b); !slices.Contains(r, "[[event_sink]]") {
		t.Errorf("a changed sink not reported as needing a restart: %v", r)
	}
}
