package bounce

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"sync"
)

// MaxText is how many bytes of reply text are classified; the rest is
// ignored. SMTP reply lines are at most 512 bytes (RFC 5321 §4.5.3.1.5), so
// this leaves room for several lines while bounding the work a hostile
// server can cause.
const MaxText = 4096

// Classifier assigns a Class to an SMTP reply. It is immutable and safe for
// concurrent use.
type Classifier struct {
	rules []compiledRule
	// auto finds the rules' required literals in a folded subject line.
	auto    *automaton
	scratch sync.Pool // *scratch
}

type compiledRule struct {
	class Class
	re    *regexp.Regexp
	// needs lists, for each set of literals the rule requires, the
	// automaton's pattern numbers of its members; the rule is only run when
	// every set has a member in the subject line.
	needs [][]int32
}

// scratch is the per-call working memory, pooled so that Classify does not
// allocate.
type scratch struct {
	subject []byte
	folded  []byte
	pats    []uint64 // bit set over the automaton's patterns
}

// compileRule compiles a rule's pattern case-insensitively.
func compileRule(r Rule) (*regexp.Regexp, error) {
	re, err := regexp.Compile("(?i)" + r.Pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", r.Pattern, err)
	}
	return re, nil
}

// New compiles the rules, which are tried in order; the first that matches
// decides. New(nil) gives a classifier that uses only the status-code
// fallbacks.
func New(rules []Rule) (*Classifier, error) {
	c := &Classifier{rules: make([]compiledRule, len(rules))}
	var patterns []string
	index := map[string]int32{}
	for i, r := range rules {
		if r.Class >= numClasses {
			return nil, fmt.Errorf("bounce: rule %d: invalid class %d", i+1, r.Class)
		}
		re, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("bounce: rule %d (%s): %w", i+1, r.Class, err)
		}
		c.rules[i] = compiledRule{class: r.Class, re: re}

		for _, set := range literalsOf("(?i)" + r.Pattern) {
			ids := make([]int32, len(set))
			for j, l := range set {
				p, seen := index[l]
				if !seen {
					p = int32(len(patterns))
					index[l] = p
					patterns = append(patterns, l)
				}
				ids[j] = p
			}
			c.rules[i].needs = append(c.rules[i].needs, ids)
		}
	}
	c.auto = newAutomaton(patterns)
	npat := (len(patterns) + 63) / 64
	c.scratch.New = func() any {
		return &scratch{
			subject: make([]byte, 0, 256),
			folded:  make([]byte, 0, 256),
			pats:    make([]uint64, npat),
		}
	}
	return c, nil
}

// literalsOf parses a pattern the way regexp does and returns its required
// literals (see requiredLiterals).
func literalsOf(pattern string) [][]string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	return requiredLiterals(re.Simplify())
}

// Default returns a classifier with the embedded default rules. Each call
// compiles them anew (some milliseconds): keep the result.
func Default() *Classifier {
	c, err := New(DefaultRules())
	if err != nil {
		panic("bounce: embedded default.toml: " + err.Error())
	}
	return c
}

// Classify classifies one SMTP reply: its code (0 when there was no reply),
// its enhanced status code ("5.1.1", or "" when none) and its text.
//
// The rules are matched against the subject line "CODE ENHANCED text", as
// in KumoMTA: the code as three digits ("000" for none), the enhanced code
// when it is well-formed (else it is left out with its space), and the
// text with control characters (CR, LF, TAB…) turned into spaces and cut
// at MaxText bytes. The first rule that matches decides. When none does,
// the enhanced code decides where RFC 3463 gives it a clear meaning, then
// the reply code (see fallback); else the reply is Uncategorized.
//
// Positive and intermediate replies (1xx, 2xx, 3xx) are not failures and
// are always Uncategorized.
func (c *Classifier) Classify(code int, enhanced, text string) Class {
	s := c.scratch.Get().(*scratch)
	s.subject = appendText(appendHead(s.subject[:0], code, enhanced), text)
	class := c.classify(s, code, enhanced)
	c.scratch.Put(s)
	return class
}

// ClassifyLines is Classify for a multi-line reply whose text lines are
// given separately (without their codes); they are joined with spaces,
// without allocating.
func (c *Classifier) ClassifyLines(code int, enhanced string, lines []string) Class {
	s := c.scratch.Get().(*scratch)
	s.subject = appendHead(s.subject[:0], code, enhanced)
	start := len(s.subject)
	for i, l := range lines {
		if i > 0 {
			s.subject = append(s.subject, ' ')
		}
		s.subject = appendText(s.subject, l)
		if len(s.subject)-start >= MaxText {
			s.subject = s.subject[:start+MaxText]
			break
		}
	}
	class := c.classify(s, code, enhanced)
	c.scratch.Put(s)
	return class
}

func (c *Classifier) classify(s *scratch, code int, enhanced string) Class {
	if code >= 100 && code < 400 {
		return Uncategorized
	}
	if i := c.firstMatch(s); i >= 0 {
		return c.rules[i].class
	}
	return fallback(code, enhanced)
}

// firstMatch returns the index of the first rule matching s.subject, or -1.
// One pass of the automaton over the folded subject finds which literals
// occur; a rule's regular expression is only run when every set of
// literals it requires has a member there.
func (c *Classifier) firstMatch(s *scratch) int {
	if len(c.rules) == 0 {
		return -1
	}
	s.folded = foldText(s.folded[:0], s.subject)
	clear(s.pats)
	c.auto.scan(s.folded, s.pats)
rules:
	for i := range c.rules {
		r := &c.rules[i]
		for _, set := range r.needs {
			if !anyBit(s.pats, set) {
				continue rules
			}
		}
		if r.re.Match(s.subject) {
			return i
		}
	}
	return -1
}

func anyBit(bits []uint64, ids []int32) bool {
	for _, p := range ids {
		if bits[p>>6]&(1<<(p&63)) != 0 {
			return true
		}
	}
	return false
}

// firstMatchSlow tries every rule in order, without the prefilter; tests
// compare it with firstMatch.
func (c *Classifier) firstMatchSlow(subject []byte) int {
	for i, r := range c.rules {
		if r.re.Match(subject) {
			return i
		}
	}
	return -1
}

// appendHead appends "CODE " and, when well-formed, "ENHANCED ".
func appendHead(dst []byte, code int, enhanced string) []byte {
	if code < 100 || code > 999 {
		code = 0
	}
	dst = append(dst, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10), ' ')
	if _, _, _, ok := parseEnhanced(enhanced); ok {
		dst = append(dst, enhanced...)
		dst = append(dst, ' ')
	}
	return dst
}

// appendText appends up to MaxText bytes of text with control characters
// replaced by spaces, so that "." and "^" behave on multi-line text.
func appendText(dst []byte, text string) []byte {
	if len(text) > MaxText {
		text = text[:MaxText]
	}
	for i := 0; i < len(text); i++ {
		b := text[i]
		if b < 0x20 || b == 0x7f {
			b = ' '
		}
		dst = append(dst, b)
	}
	return dst
}
