package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventSinkDefaultsAndChecks(t *testing.T) {
	c := mustParse(t, `[[event_sink]]
name = "crm"
kind = "webhook"
url = "https://hooks.example.test/gannet"
secret = "s3cret"
types = ["Delivery", "Bounce"]

[[event_sink]]
name = "bus"
kind = "amqp"
url = "amqp://gannet:pw@127.0.0.1:5672/"
exchange = "gannet.events"
batch = true
max_batch = 50
`)
	if len(c.EventSinks) != 2 {
		t.Fatalf("sinks %+v", c.EventSinks)
	}
	w, a := c.EventSinks[0], c.EventSinks[1]
	if w.MaxBatch != 100 || w.MaxDelay.Duration != time.Second || w.MaxRetryAge.Duration != 24*time.Hour ||
		w.MaxBacklog != 1_000_000 || w.Timeout.Duration != 30*time.Second || len(w.Types) != 2 || w.Batch {
		t.Errorf("webhook defaults: %+v", w)
	}
	if a.MaxBatch != 50 || !a.Batch || a.RoutingKey != "{type}.{tenant}" || a.Exchange != "gannet.events" {
		t.Errorf("amqp sink: %+v", a)
	}
	_, err := Parse("test.toml", []byte(`[[event_sink]]
name = "a b"
kind = "webhook"
url = "amqp://127.0.0.1/"

[[event_sink]]
name = "x"
kind = "kafka"
url = "http://127.0.0.1/"
types = ["Delivered"]
max_batch = 0
`))
	for _, want := range []string{
		`test.toml:2: event_sink[0].name: "a b": letters, digits`,
		`test.toml:4: event_sink[0].url: a webhook needs an http:// or https:// URL`,
		`event_sink[0].secret: a webhook needs a secret`,
		`test.toml:8: event_sink[1].kind: "kafka" is not one of "webhook", "amqp"`,
		`test.toml:10: event_sink[1].types: "Delivered" is not one of`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	var many strings.Builder
	for i := range MaxEventSinks + 1 {
		fmt.Fprintf(&many, "[[event_sink]]\nname = \"s%d\"\nkind = \"amqp\"\nurl = \"amqp://127.0.0.1/\"\n", i)
	}
	if _, err := Parse("test.toml", []byte(many.String())); err == nil || !strings.Contains(err.Error(), "at most 32 event sinks, not 33") {
		t.Errorf("33 sinks: %v", err)
	}
	// Both keys that carry secrets are redacted by config show.
	if s := string(Show(c, false)); strings.Contains(s, "s3cret") || strings.Contains(s, "pw@") || !strings.Contains(s, "[[event_sink]]") {
		t.Errorf("config show:\n%s", s)
	}
}
