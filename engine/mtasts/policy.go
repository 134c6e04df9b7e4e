package mtasts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gannet/internal/txtrec"
)

// Mode is a policy's mode (RFC 8461 §3.2, §5).
type Mode uint8

const (
	// ModeNone: the domain has no active policy (it is being withdrawn).
	ModeNone Mode = iota
	// ModeTesting: failures are reported, mail is delivered as before.
	ModeTesting
	// ModeEnforce: mail goes only to matching MX hosts over validated TLS.
	ModeEnforce
)

// String returns the policy-file spelling.
func (m Mode) String() string {
	switch m {
	case ModeTesting:
		return "testing"
	case ModeEnforce:
		return "enforce"
	}
	return "none"
}

// MaxMaxAge is the largest max_age a policy may give, about one year
// (§3.2: "maximum value of 31557600"). Larger values are taken as this.
const MaxMaxAge = 31557600

// MaxPolicySize bounds the policy file (§3.3: senders may limit it; 64 KiB
// is the limit RFC 8461 suggests).
const MaxPolicySize = 64 << 10

// ErrBadPolicy wraps every reason a policy file is rejected; a domain
// whose policy does not parse has no usable policy (§3.2, §5).
var ErrBadPolicy = errors.New("malformed MTA-STS policy")

// Policy is a parsed policy file (RFC 8461 §3.2).
type Policy struct {
	Mode Mode
	// MX are the allowed MX patterns, lower case without trailing dot:
	// "mx.example.com" or "*.example.net" (§4.1).
	MX []string
	// MaxAge is how long the policy may be cached, in seconds (at most
	// MaxMaxAge).
	MaxAge int64
}

// MaxAgeDuration returns MaxAge as a duration.
func (p *Policy) MaxAgeDuration() time.Duration { return time.Duration(p.MaxAge) * time.Second }

func badPolicy(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPolicy, fmt.Sprintf(format, a...))
}

// ParsePolicy parses a policy file (§3.2): lines ending in LF or CRLF, each
// "key:" followed by optional white space and a value. It needs exactly
// one "version: STSv1", one mode (enforce, testing or none), one max_age
// (1 to 10 digits; values over MaxMaxAge are taken as MaxMaxAge), and at
// least one mx unless the mode is none. Field names and values are case
// sensitive as in the RFC's ABNF (%s); unknown fields are ignored
// (sts-policy-extension).
func ParsePolicy(b []byte) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, badPolicy("larger than %d bytes", MaxPolicySize)
	}
	p := &Policy{}
	var haveVersion, haveMode, haveMaxAge bool
	for n, rest := 1, string(b); rest != ""; n++ {
		line := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		line = strings.TrimSuffix(line, "\r")
		line = strings.TrimRight(line, " \t")
		if line == "" {
			continue // blank lines, including the one after a final LF
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, badPolicy("line %d: no ':'", n)
		}
		value = strings.TrimLeft(value, " \t")
		switch key {
		case "version":
			if haveVersion || value != "STSv1" {
				return nil, badPolicy("line %d: version %q", n, value)
			}
			haveVersion = true
		case "mode":
			if haveMode {
				return nil, badPolicy("line %d: second mode", n)
			}
			switch value {
			case "enforce":
				p.Mode = ModeEnforce
			case "testing":
				p.Mode = ModeTesting
			case "none":
				p.Mode = ModeNone
			default:
				return nil, badPolicy("line %d: mode %q", n, value)
			}
			haveMode = true
		case "max_age":
			if haveMaxAge || len(value) < 1 || len(value) > 10 || strings.Trim(value, "0123456789") != "" {
				return nil, badPolicy("line %d: max_age %q", n, value)
			}
			v, _ := strconv.ParseInt(value, 10, 64) // at most 10 digits: fits
			p.MaxAge = min(v, MaxMaxAge)
			haveMaxAge = true
		case "mx":
			pat, ok := mxPattern(value)
			if !ok {
				return nil, badPolicy("line %d: mx %q", n, value)
			}
			p.MX = append(p.MX, pat)
		default:
			if !txtrec.IsExtName(key) {
				return nil, badPolicy("line %d: field name %q", n, key)
			}
			// sts-policy-extension: ignored.
		}
	}
	switch {
	case !haveVersion:
		return nil, badPolicy("no version")
	case !haveMode:
		return nil, badPolicy("no mode")
	case !haveMaxAge:
		return nil, badPolicy("no max_age")
	case len(p.MX) == 0 && p.Mode != ModeNone:
		return nil, badPolicy("no mx")
	}
	return p, nil
}

// mxPattern checks and normalizes an mx value: a domain name, optionally
// with a leading "*." (§3.2 sts-policy-mx-value, §4.1).
func mxPattern(v string) (string, bool) {
	v = strings.ToLower(strings.TrimSuffix(v, "."))
	name := strings.TrimPrefix(v, "*.")
	if name == "" || len(name) > 253 {
		return "", false
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !txtrec.IsAlnum(c) && c != '-' && c != '_' {
				return "", false
			}
		}
	}
	return v, true
}

// Match reports whether the MX host name host is allowed by the policy's
// mx patterns (§4.1): equal to a pattern, ignoring case and a trailing
// dot, or, for a pattern "*.suffix", one label followed by ".suffix": the
// wildcard stands for exactly one leftmost label.
func (p *Policy) Match(host string) bool {
	h := strings.TrimSuffix(host, ".")
	for _, pat := range p.MX {
		if suffix, ok := strings.CutPrefix(pat, "*."); ok {
			i := strings.IndexByte(h, '.')
			if i > 0 && strings.EqualFold(h[i+1:], suffix) {
				return true
			}
			continue
		}
		if strings.EqualFold(h, pat) {
			return true
		}
	}
	return false
}
