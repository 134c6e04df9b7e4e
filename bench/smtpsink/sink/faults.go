package sink

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Stage is a point of the SMTP dialogue where a fault can be injected.
type Stage int

// The stages, in dialogue order.
const (
	StageConnect Stage = iota // the greeting (RFC 5321 §4.3.1 "connection establishment")
	StageEHLO                 // the reply to EHLO or HELO
	StageMail                 // the reply to MAIL FROM
	StageRcpt                 // the reply to each RCPT TO
	StageData                 // the reply to DATA (instead of 354) or to the first BDAT
	StageDot                  // the reply after the message data ("." or BDAT LAST)
	numStages
)

var stageNames = [numStages]string{"connect", "ehlo", "mail", "rcpt", "data", "dot"}

func (s Stage) String() string {
	if s >= 0 && s < numStages {
		return stageNames[s]
	}
	return "stage(" + strconv.Itoa(int(s)) + ")"
}

// ParseStage returns the stage named name (connect, ehlo, mail, rcpt, data, dot).
func ParseStage(name string) (Stage, error) {
	for i, n := range stageNames {
		if strings.EqualFold(n, name) {
			return Stage(i), nil
		}
	}
	return 0, fmt.Errorf("unknown stage %q (want connect|ehlo|mail|rcpt|data|dot)", name)
}

// Failure answers a stage with Code instead of the normal reply, with
// probability Prob, or — a scripted failure, Count > 0 — the first Count
// times the stage is reached (over all connections, from SetFaults on),
// and never after: a provider that defers for a while and recovers. A 421
// closes the connection after the reply. Match, when not empty, limits a
// mail or rcpt failure to addresses that contain it (case-sensitive), and
// a data or dot failure to transactions whose sender contains it, so a
// test can fail chosen recipients or messages deterministically.
type Failure struct {
	Stage Stage
	Code  int     // 400..599
	Prob  float64 // 0..1; unused with Count
	Count int     // > 0: the first Count times, instead of Prob
	Text  string  // reply text after the code, usually starting with an enhanced code; "" = a default
	Match string

	left *atomic.Int64 // Count's failures still to give (compileFaults)
}

// Delay sleeps before the reply of a stage.
type Delay struct {
	Stage    Stage
	Duration time.Duration
}

// Drop closes the connection without a reply at a stage, with probability
// Prob. Match limits it as it limits a Failure.
type Drop struct {
	Stage Stage
	Prob  float64
	Match string
}

// Throttle answers "421 4.7.0" (or 421 Text) at MAIL once Limit messages
// have been started in the current fixed window of length Per, until the
// window passes: a provider's hidden rate limit.
type Throttle struct {
	Limit int
	Per   time.Duration
	Text  string // after "421 "; "" = "4.7.0 Throttled, try again later"
}

// Faults is the whole fault-injection setup of a sink.
type Faults struct {
	Failures []Failure
	Delays   []Delay
	Drops    []Drop
	Throttle Throttle // zero Limit: no throttle
}

// ParseFailure parses "STAGE[~MATCH]:CODE:PROB[:TEXT]", e.g. "rcpt:550:0.1",
// "dot:421:0.05", "mail:451:0.2:4.7.0 Try later" or "rcpt~bad:550:1"; PROB
// may be "#N", the first N times only (Failure.Count), as in
// "rcpt~@slow.test:421:#30:4.7.28 Too many messages".
func ParseFailure(spec string) (Failure, error) {
	parts := strings.SplitN(spec, ":", 4)
	if len(parts) < 3 {
		return Failure{}, fmt.Errorf("fail %q: want STAGE:CODE:PROB[:TEXT]", spec)
	}
	stage, match, _ := strings.Cut(parts[0], "~")
	st, err := ParseStage(stage)
	if err != nil {
		return Failure{}, fmt.Errorf("fail %q: %w", spec, err)
	}
	code, err := strconv.Atoi(parts[1])
	if err != nil || code < 400 || code > 599 {
		return Failure{}, fmt.Errorf("fail %q: code must be 400..599", spec)
	}
	f := Failure{Stage: st, Code: code, Match: match}
	if n, ok := strings.CutPrefix(parts[2], "#"); ok {
		f.Count, err = strconv.Atoi(n)
		if err != nil || f.Count < 1 {
			return Failure{}, fmt.Errorf("fail %q: #N needs a positive count", spec)
		}
	} else if f.Prob, err = parseProb(parts[2]); err != nil {
		return Failure{}, fmt.Errorf("fail %q: %w", spec, err)
	}
	if len(parts) == 4 {
		f.Text = strings.TrimSpace(parts[3])
	}
	return f, nil
}

// ParseDelay parses "STAGE:DURATION", e.g. "dot:200ms".
func ParseDelay(spec string) (Delay, error) {
	stage, dur, ok := strings.Cut(spec, ":")
	if !ok {
		return Delay{}, fmt.Errorf("delay %q: want STAGE:DURATION", spec)
	}
	st, err := ParseStage(stage)
	if err != nil {
		return Delay{}, fmt.Errorf("delay %q: %w", spec, err)
	}
	d, err := time.ParseDuration(dur)
	if err != nil || d < 0 {
		return Delay{}, fmt.Errorf("delay %q: bad duration", spec)
	}
	return Delay{Stage: st, Duration: d}, nil
}

// ParseDrop parses "STAGE[~MATCH]:PROB", e.g. "data:0.01" or "dot~cut:1".
func ParseDrop(spec string) (Drop, error) {
	stage, prob, ok := strings.Cut(spec, ":")
	if !ok {
		return Drop{}, fmt.Errorf("drop %q: want STAGE[~MATCH]:PROB", spec)
	}
	stage, match, _ := strings.Cut(stage, "~")
	st, err := ParseStage(stage)
	if err != nil {
		return Drop{}, fmt.Errorf("drop %q: %w", spec, err)
	}
	p, err := parseProb(prob)
	if err != nil {
		return Drop{}, fmt.Errorf("drop %q: %w", spec, err)
	}
	return Drop{Stage: st, Prob: p, Match: match}, nil
}

// ParseThrottle parses "N/m" (also "N/s", "N/h", or "N/DURATION" such as
// "100/10s"), optionally followed by ":TEXT", the reply after "421 ", as
// in "20/s:4.7.28 Our system has detected an unusual rate".
func ParseThrottle(spec string) (Throttle, error) {
	spec, text, _ := strings.Cut(spec, ":")
	n, per, ok := strings.Cut(spec, "/")
	if !ok {
		return Throttle{}, fmt.Errorf("throttle %q: want N/m", spec)
	}
	limit, err := strconv.Atoi(n)
	if err != nil || limit < 1 {
		return Throttle{}, fmt.Errorf("throttle %q: N must be a positive integer", spec)
	}
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return Throttle{}, fmt.Errorf("throttle %q: window must be s, m, h or a duration", spec)
		}
	}
	return Throttle{Limit: limit, Per: d, Text: strings.TrimSpace(text)}, nil
}

// fires reports whether the failure answers this time: by its
// probability, or while its count lasts.
func (x *Failure) fires(rnd func() float64) bool {
	if x.left != nil {
		return x.left.Add(-1) >= 0
	}
	return rnd() < x.Prob
}

func parseProb(s string) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p < 0 || p > 1 {
		return 0, fmt.Errorf("probability %q must be 0..1", s)
	}
	return p, nil
}

// defaultText is the reply text of an injected failure without its own text.
func defaultText(code int) string {
	switch {
	case code == 421:
		return "4.7.0 Injected: service not available, closing transmission channel"
	case code >= 500:
		return strconv.Itoa(code/100) + ".0.0 Injected permanent failure"
	default:
		return strconv.Itoa(code/100) + ".0.0 Injected temporary failure"
	}
}

// stageFaults is Faults indexed by stage, built once per SetFaults so that a
// session looks up its stage without scanning.
type stageFaults struct {
	failures [numStages][]Failure
	delay    [numStages]time.Duration
	drop     [numStages]float64
	drops    [numStages][]Drop // those with a Match
	throttle Throttle
	any      [numStages]bool
}

func compileFaults(f Faults) *stageFaults {
	sf := &stageFaults{throttle: f.Throttle}
	for _, x := range f.Failures {
		if x.Text == "" {
			x.Text = defaultText(x.Code)
		}
		if x.Count > 0 {
			x.left = new(atomic.Int64)
			x.left.Store(int64(x.Count))
		}
		sf.failures[x.Stage] = append(sf.failures[x.Stage], x)
		sf.any[x.Stage] = true
	}
	for _, x := range f.Delays {
		sf.delay[x.Stage] += x.Duration
		sf.any[x.Stage] = true
	}
	for _, x := range f.Drops {
		sf.any[x.Stage] = true
		if x.Match != "" {
			sf.drops[x.Stage] = append(sf.drops[x.Stage], x)
			continue
		}
		// Two drop rules at one stage combine as independent chances.
		sf.drop[x.Stage] = 1 - (1-sf.drop[x.Stage])*(1-x.Prob)
		sf.any[x.Stage] = true
	}
	return sf
}
