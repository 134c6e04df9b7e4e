package bounce

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRulesLayouts(t *testing.T) {
	ours := `
[[rule]]
class = "SpamBlock"
patterns = ['blocked', 'listed']

[[rule]]
class = "InvalidRecipient"
patterns = ['unknown']

[[rule]]
class = "SpamBlock"
patterns = ['spam']
`
	rules, err := ParseRules([]byte(ours))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{{SpamBlock, "blocked"}, {SpamBlock, "listed"}, {InvalidRecipient, "unknown"}, {SpamBlock, "spam"}}
	if !equalRules(rules, want) {
		t.Errorf("[[rule]] layout: got %v, want %v", rules, want)
	}

	// KumoMTA's layout keeps the file's order although TOML tables are
	// unordered maps.
	kumo := `
[rules]
TransientFailure = ["^451 "]
InvalidRecipient = ["^550 5\\.1\\.1 ", "user unknown"]
AuthenticationFailed = ["dmarc"]
InvalidSender = [] # an empty list is allowed, as in KumoMTA's files
`
	rules, err = ParseRules([]byte(kumo))
	if err != nil {
		t.Fatal(err)
	}
	want = []Rule{{TransientFailure, `^451 `}, {InvalidRecipient, `^550 5\.1\.1 `}, {InvalidRecipient, "user unknown"}, {AuthenticationFailed, "dmarc"}}
	if !equalRules(rules, want) {
		t.Errorf("[rules] layout: got %v, want %v", rules, want)
	}
}

func equalRules(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseRulesErrors(t *testing.T) {
	bad := map[string]string{
		"unknown class":   "[[rule]]\nclass = \"Nope\"\npatterns = ['x']\n",
		"bad pattern":     "[[rule]]\nclass = \"SpamBlock\"\npatterns = ['(']\n",
		"misspelt key":    "[[rule]]\nclass = \"SpamBlock\"\npattern = ['x']\n",
		"unknown table":   "[rulez]\nSpamBlock = ['x']\n",
		"both layouts":    "[[rule]]\nclass = \"SpamBlock\"\npatterns = ['x']\n[rules]\nSpamBlock = ['y']\n",
		"not toml":        "[[rule\n",
		"kumo bad class":  "[rules]\nSpam = ['x']\n",
		"kumo bad regexp": "[rules]\nSpamBlock = ['a{2,1}']\n",
		"wrong type":      "[[rule]]\nclass = 3\npatterns = ['x']\n",
	}
	for name, text := range bad {
		if _, err := ParseRules([]byte(text)); err == nil {
			t.Errorf("%s: ParseRules accepted %q", name, text)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestLoadFile checks that an operator's rules are tried before the
// defaults, and that the defaults still apply to everything else.
func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bounces.toml")
	own := "[[rule]]\nclass = \"PolicyRelated\"\npatterns = ['^550 5\\.1\\.1 .*example\\.net']\n"
	if err := os.WriteFile(path, []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Classify(550, "5.1.1", "<a@example.net> user unknown"); got != PolicyRelated {
		t.Errorf("operator rule: got %s, want PolicyRelated", got)
	}
	if got := c.Classify(550, "5.1.1", "<a@example.com> user unknown"); got != InvalidRecipient {
		t.Errorf("default rule: got %s, want InvalidRecipient", got)
	}

	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
	if err := os.WriteFile(path, []byte("[[rule]]\nclass = \"Nope\"\npatterns = ['x']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadFile of a bad file: %v (want an error naming the file)", err)
	}
}

// TestKumoMTARulesFiles loads KumoMTA's own rules files (read in place), in
// the order KumoMTA documents (community before iana), and checks that
// they reproduce KumoMTA's labelled examples: the [rules] layout and its
// regular expressions are read as KumoMTA reads them.
func TestKumoMTARulesFiles(t *testing.T) {
	dir := testdataDir(t, "bounces/kumomta")
	var rules []Rule
	for _, name := range []string{"community-bounces.toml", "iana.toml"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRules(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %d rules", name, len(r))
		rules = append(rules, r...)
	}
	c, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range readTSV(t, filepath.Join(dir, "iana-examples.tsv")) {
		code, enh, text := splitReply(row["response"])
		// KumoMTA has no status-code fallback: an unmatched reply is
		// Uncategorized, so only rule matches are compared.
		got := Uncategorized
		s := c.scratch.Get().(*scratch)
		s.subject = appendText(appendHead(s.subject[:0], code, enh), text)
		if i := c.firstMatch(s); i >= 0 {
			got = c.rules[i].class
		}
		c.scratch.Put(s)
		if got.String() != row["expected_class"] {
			t.Errorf("%q with KumoMTA's rules: got %s, want %s", row["response"], got, row["expected_class"])
		}
	}
}

func TestDefaultRulesTOML(t *testing.T) {
	rules, err := ParseRules(DefaultRulesTOML())
	if err != nil {
		t.Fatal(err)
	}
	if !equalRules(rules, DefaultRules()) {
		t.Error("DefaultRulesTOML does not parse to DefaultRules")
	}
	if len(rules) < 100 {
		t.Errorf("only %d default rules", len(rules))
	}
	// Every class a rule names is used on purpose; no rule is unreachable
	// because an identical pattern came before it.
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Pattern] {
			t.Errorf("duplicate default pattern %q", r.Pattern)
		}
		seen[r.Pattern] = true
	}
}
