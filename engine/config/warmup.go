package config

import (
	"time"
)

// Warm-up schedules of an [[egress_source]] (its warmup keys).
const (
	WarmupNone = ""     // no warm-up: the source is warm
	WarmupRamp = "ramp" // WarmupDay1 figures, doubled each day, up to WarmupCap
)

// Keys of warmup_day1 that are not provider names.
const (
	// WarmupOther is the figure for destinations no provider table
	// ([shaping."LABEL"] with mx_suffix) matches.
	WarmupOther = "default"
	// WarmupProviders is the figure for each provider not named itself.
	WarmupProviders = "providers"
)

// Default warm-up figures: day 1 allows 200 messages to each provider and
// 500 to the rest, doubling every day until 100,000 a day.
const (
	DefaultWarmupProviders = 200
	DefaultWarmupOther     = 500
	DefaultWarmupCap       = 100000
)

// WarmupDateLayout is the form of warmup_start.
const WarmupDateLayout = "2006-01-02"

// WarmupFigure is one member of warmup_day1: the messages a warming source
// may send on day 1 to a provider (a [shaping."LABEL"] name with
// mx_suffix, "providers" for every other provider, "default" for the rest).
type WarmupFigure struct {
	Provider string `toml:"provider"`
	Messages int    `toml:"messages"`
}

func (s *EgressSource) figure(name string) (int, bool) {
	for _, f := range s.WarmupDay1 {
		if f.Provider == name {
			return f.Messages, true
		}
	}
	return 0, false
}

// WarmupStartDate returns warmup_start as midnight UTC; ok false when unset.
func (s *EgressSource) WarmupStartDate() (t time.Time, ok bool) {
	if s.WarmupStart == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(WarmupDateLayout, s.WarmupStart)
	return t, err == nil
}

// WarmupFirstDay returns the day-1 figure of provider ("" for destinations
// no provider table matches): warmup_day1's own, else its "providers" or
// "default" figure, else the built-in one.
func (s *EgressSource) WarmupFirstDay(provider string) int {
	if provider == "" {
		if n, ok := s.figure(WarmupOther); ok {
			return n
		}
		return DefaultWarmupOther
	}
	if n, ok := s.figure(provider); ok {
		return n
	}
	if n, ok := s.figure(WarmupProviders); ok {
		return n
	}
	return DefaultWarmupProviders
}

// WarmupCeiling returns warmup_cap, or the default.
func (s *EgressSource) WarmupCeiling() int {
	if s.WarmupCap > 0 {
		return s.WarmupCap
	}
	return DefaultWarmupCap
}

// validateWarmup checks the warmup keys of an egress source.
func (s *EgressSource) validateWarmup(ck *checker, p func(string) []string) {
	ck.oneOf(p("warmup"), s.Warmup, WarmupNone, WarmupRamp)
	if s.WarmupStart != "" {
		if _, err := time.Parse(WarmupDateLayout, s.WarmupStart); err != nil {
			ck.add(p("warmup_start"), "%q is not a date such as \"2026-12-01\"", s.WarmupStart)
		}
	}
	if s.WarmupCap < 0 {
		ck.add(p("warmup_cap"), "must not be negative")
	}
	for _, f := range s.WarmupDay1 {
		if f.Provider == "" {
			ck.add(p("warmup_day1"), "each figure needs a provider (a provider table's name, \"providers\" or \"default\")")
		}
		if f.Messages < 1 {
			ck.add(p("warmup_day1"), "messages of %q must be at least 1, not %d", f.Provider, f.Messages)
		}
	}
}
