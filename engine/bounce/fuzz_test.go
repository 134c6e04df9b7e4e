package bounce

import (
	"strings"
	"testing"
)

// FuzzClassify feeds arbitrary replies to the default classifier: it must
// not panic, the literal prefilter must pick the same rule as trying every
// rule in order, and Classify and ClassifyLines must agree.
func FuzzClassify(f *testing.F) {
	seeds := []struct {
		code      int
		enh, text string
	}{
		{550, "5.1.1", "user unknown"},
		{421, "4.7.0", "Try again later"},
		{552, "4.2.2", "mailbox is stuffed"},
		{554, "5.7.1", "Client host [192.0.2.1] blocked using zen.spamhaus.org"},
		{550, "5.1.1", "uſer unknown"},               // U+017F folds to s
		{550, "", "\u212aindly, no such user"},       // Kelvin sign folds to k
		{550, "5.1.1", "line one\r\nline two\tuser"}, // control characters
		{0, "", ""},
		{-1, "5.", "\xff\xfe"},
		{1000, "5.1.1.1", strings.Repeat("mailbox full ", 400)},
		{250, "2.0.0", "OK"},
	}
	for _, s := range seeds {
		f.Add(s.code, s.enh, s.text)
	}
	c := Default()
	f.Fuzz(func(t *testing.T, code int, enh, text string) {
		got := c.Classify(code, enh, text)
		if got >= numClasses {
			t.Fatalf("class %d out of range", got)
		}
		if lines := c.ClassifyLines(code, enh, strings.Split(text, "\n")); lines != got {
			t.Fatalf("ClassifyLines = %s, Classify = %s", lines, got)
		}
		checkPrefilter(t, c, code, enh, text)
	})
}

// FuzzParseRules feeds arbitrary rules files to the loader: it must not
// panic, and whatever it accepts must build a classifier whose prefilter
// agrees with trying every rule in order.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte("[[rule]]\nclass = \"SpamBlock\"\npatterns = ['blocked (by|using)', '\\bspam']\n"))
	f.Add([]byte("[rules]\nInvalidRecipient = [\"^550 5\\\\.1\\\\.1 \", \"user unknown\"]\nInvalidSender = []\n"))
	f.Add([]byte("[[rule]]\nclass = \"QuotaIssues\"\npatterns = ['(?-i)FULL|x{2,5}(a|b)+\\S*ſ']\n"))
	f.Add(DefaultRulesTOML())
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data)
		if err != nil {
			return
		}
		c, err := New(rules)
		if err != nil {
			t.Fatalf("ParseRules accepted rules that New refuses: %v", err)
		}
		for _, text := range []string{"user unknown", "FULL xxab", "blocked by ſpam", string(data)} {
			c.Classify(550, "5.1.1", text)
			checkPrefilter(t, c, 550, "5.1.1", text)
		}
	})
}

// FuzzPrefilterPattern checks the literal extraction on arbitrary patterns:
// for a pattern that compiles, a text that matches must contain one
// literal of every required set.
func FuzzPrefilterPattern(f *testing.F) {
	f.Add(`\b(user|mailbox) (unknown|not found)`, "550 User Unknown")
	f.Add(`k(?-i:ab)c+`, "\u212aabccc")
	f.Add(`s{2,3}x|yss`, "ſſx")
	f.Add(`(?s)a.{0,3}bcd?e`, "A\nbce")
	f.Fuzz(func(t *testing.T, pattern, text string) {
		c, err := New([]Rule{{Class: SpamBlock, Pattern: pattern}})
		if err != nil {
			return
		}
		checkPrefilter(t, c, 550, "", text)
	})
}
