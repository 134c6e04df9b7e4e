package config

import (
	"strings"
	"testing"
)

// TestWarmupAllowance: the day's figure per provider of a ramp (built-in
// and configured day 1, doubling, no limit from the cap) and of a table
// (the last listed day at or before, the provider's own figure, then
// "providers", then "default"; warm after the last day).
func TestWarmupAllowance(t *testing.T) {
	c, err := Parse("w.toml", []byte(`
[shaping.gmail]
mx_suffix = [".google.test"]

[[egress_source]]
name = "ramp"
warmup = "ramp"
warmup_cap = 1000
warmup_day1 = [{provider = "gmail", messages = 100}]

[[egress_source]]
name = "table"
warmup = "table"
warmup_schedule = [
  {day = 1, provider = "default", messages = 50},
  {day = 1, provider = "providers", messages = 20},
  {day = 2, provider = "gmail", messages = 30},
  {day = 4, provider = "default", messages = 400},
  {day = 5, provider = "default", messages = 800},
]
`))
	if err != nil {
		t.Fatal(err)
	}
	ramp, table := c.EgressSource("ramp"), c.EgressSource("table")
	for _, tc := range []struct {
		src      *EgressSource
		day      int
		provider string
		want     int
	}{
		{ramp, 1, "gmail", 100}, {ramp, 2, "gmail", 200}, {ramp, 4, "gmail", 800}, {ramp, 5, "gmail", -1},
		{ramp, 1, "yahoo", 200}, {ramp, 1, "", 500}, {ramp, 2, "", -1},
		{table, 1, "gmail", 20}, {table, 2, "gmail", 30}, {table, 3, "gmail", 30}, {table, 1, "", 50},
		{table, 3, "", 50}, {table, 4, "", 400}, {table, 5, "", 800}, {table, 6, "", -1}, {table, 6, "gmail", -1},
	} {
		if got := tc.src.WarmupAllowance(tc.day, tc.provider); got != tc.want {
			t.Errorf("%s day %d provider %q: %d, want %d", tc.src.Name, tc.day, tc.provider, got, tc.want)
		}
	}
	if a := (&EgressSource{}).WarmupAllowance(1, ""); a != -1 {
		t.Errorf("no warm-up: %d, want -1", a)
	}
}

// TestWarmupConfigRefused: a clear message for each bad warm-up key.
func TestWarmupConfigRefused(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`warmup = "slow"`, `"slow" is not one of`},
		{`warmup = "ramp"` + "\n" + `warmup_start = "1 Dec"`, `not a date such as "2026-12-01"`},
		{`warmup = "table"` + "\n" + `warmup_schedule = [{day = 2, provider = "default", messages = 5}]`, `needs a figure for provider "default" on day 1`},
		{`warmup = "ramp"` + "\n" + `warmup_day1 = [{provider = "gmail", messages = 0}]`, `must be at least 1`},
	} {
		_, err := Parse("w.toml", []byte("[[egress_source]]\nname = \"s\"\n"+tc.src+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.src, err, tc.want)
		}
	}
}
