package bounce

import (
	_ "embed"
	"errors"
	"fmt"
	"os"

	"github.com/BurntSushi/toml"
)

// Rule maps replies whose subject line ("CODE ENHANCED text", see
// Classifier.Classify) matches Pattern to Class. Pattern is RE2 syntax
// (Go's regexp) and matches case-insensitively unless it turns that off
// itself with "(?-i)".
type Rule struct {
	Class   Class
	Pattern string
}

// defaultRulesTOML is the rules file shipped with Gannet.
//
//go:embed default.toml
var defaultRulesTOML []byte

// DefaultRulesTOML returns a copy of the embedded default rules file, for
// "show me the defaults" commands and as a starting point for operators.
func DefaultRulesTOML() []byte { return append([]byte(nil), defaultRulesTOML...) }

// DefaultRules returns the rules of the embedded default rules file.
func DefaultRules() []Rule {
	rules, err := ParseRules(defaultRulesTOML)
	if err != nil {
		panic("bounce: embedded default.toml: " + err.Error())
	}
	return rules
}

// rulesFile is the TOML shape of a rules file: ordered [[rule]] tables, or
// KumoMTA's [rules] table of class = [patterns] (in file order).
type rulesFile struct {
	Rule []struct {
		Class    string   `toml:"class"`
		Patterns []string `toml:"patterns"`
	} `toml:"rule"`
	Rules map[string][]string `toml:"rules"`
}

// ParseRules parses a rules file (TOML) and checks every class name and
// pattern. Two layouts are accepted, not mixed in one file:
//
//	[[rule]]                       # Gannet: tried in file order
//	class = "QuotaIssues"
//	patterns = ['mailbox (is )?full', 'over ?quota']
//
//	[rules]                        # KumoMTA's layout, also in file order
//	QuotaIssues = ['mailbox (is )?full']
//
// Unknown keys are errors, so that a misspelt key does not silently drop
// rules.
func ParseRules(data []byte) ([]Rule, error) {
	var f rulesFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("bounce rules: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("bounce rules: unknown key %q", und[0].String())
	}
	if len(f.Rule) > 0 && len(f.Rules) > 0 {
		return nil, errors.New("bounce rules: use either [[rule]] tables or one [rules] table, not both")
	}
	var rules []Rule
	add := func(where, className string, patterns []string) error {
		class, ok := ParseClass(className)
		if !ok {
			return fmt.Errorf("bounce rules: %s: unknown class %q", where, className)
		}
		for _, p := range patterns {
			r := Rule{Class: class, Pattern: p}
			if _, err := compileRule(r); err != nil {
				return fmt.Errorf("bounce rules: %s (%s): %w", where, className, err)
			}
			rules = append(rules, r)
		}
		return nil
	}
	for i, r := range f.Rule {
		if err := add(fmt.Sprintf("rule %d", i+1), r.Class, r.Patterns); err != nil {
			return nil, err
		}
	}
	// md.Keys lists keys in the order they appear in the file; a Go map
	// does not keep it, and first-match-wins needs it.
	for _, k := range md.Keys() {
		if len(k) == 2 && k[0] == "rules" {
			if err := add("[rules]", k[1], f.Rules[k[1]]); err != nil {
				return nil, err
			}
		}
	}
	return rules, nil
}

// LoadFile builds a classifier from an operator's rules file followed by the
// default rules: the operator's rules are tried first, so they override the
// defaults for the replies they match.
func LoadFile(path string) (*Classifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	own, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return New(append(own, DefaultRules()...))
}
