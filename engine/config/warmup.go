package config

import (
	"time"
)

// Warm-up schedules of an [[egress_source]] (its warmup keys).
const (
	WarmupNone = ""     // no warm-up: the source is warm
	WarmupRamp = "ramp" // WarmupDay1 figures, doubled each day, up to WarmupCap
	// WarmupTable is WarmupSchedule: each day's figures as listed (a day
	// not listed keeps the figures of the last one before it); the day
	// after the last listed day the source is warm.
	WarmupTable = "table"
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
	Day      int    `toml:"day"` // warmup_schedule only: the day from which it holds (1 = the first)
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

// WarmupAllowance returns the messages the source may send to provider
// ("" for destinations no provider table matches) on warm-up day day (1 =
// the first); -1: no limit (warm for it).
func (s *EgressSource) WarmupAllowance(day int, provider string) int {
	day = max(1, day)
	switch s.Warmup {
	case WarmupRamp:
		if day > 40 {
			return -1
		}
		a := int64(s.WarmupFirstDay(provider)) << (day - 1)
		if a >= int64(s.WarmupCeiling()) {
			return -1
		}
		return int(a)
	case WarmupTable:
		last := 0
		for _, f := range s.WarmupSchedule {
			last = max(last, f.Day)
		}
		if day > last {
			return -1
		}
		keys := []string{WarmupOther}
		if provider != "" {
			keys = []string{provider, WarmupProviders, WarmupOther}
		}
		for _, k := range keys {
			best, n := 0, -1
			for _, f := range s.WarmupSchedule {
				if f.Provider == k && f.Day <= day && f.Day > best {
					best, n = f.Day, f.Messages
				}
			}
			if n >= 0 {
				return n
			}
		}
		return 0
	}
	return -1
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
	ck.oneOf(p("warmup"), s.Warmup, WarmupNone, WarmupRamp, WarmupTable)
	day1 := false
	for _, f := range s.WarmupSchedule {
		if f.Day < 1 {
			ck.add(p("warmup_schedule"), "day of %q must be at least 1, not %d", f.Provider, f.Day)
		}
		if f.Provider == "" {
			ck.add(p("warmup_schedule"), "each figure needs a provider (a provider table's name, \"providers\" or \"default\")")
		}
		if f.Messages < 0 {
			ck.add(p("warmup_schedule"), "messages of %q on day %d must not be negative", f.Provider, f.Day)
		}
		day1 = day1 || (f.Day == 1 && f.Provider == WarmupOther)
	}
	if s.Warmup == WarmupTable && !day1 {
		ck.add(p("warmup_schedule"), "warmup = \"table\" needs a figure for provider \"default\" on day 1")
	}
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
