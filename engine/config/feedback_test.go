package config

import (
	"strings"
	"testing"
)

// TestFeedbackKeys: [feedback] and the listener flag parse; the return
// path needs a secret, the secret 16 bytes, the prefix a plain local part;
// domains are made canonical and the return-path domain is a feedback
// domain.
func TestFeedbackKeys(t *testing.T) {
	c, err := Parse("fb.toml", []byte(`[feedback]
secret = "0123456789abcdef"
domains = ["FBL.Example."]
return_path_domain = "Bounces.Example"

[[smtp_listener]]
name = "fbl"
listen = "127.0.0.1:2526"
feedback = true
`))
	if err != nil {
		t.Fatal(err)
	}
	f := &c.Feedback
	if !c.SMTPListeners[0].Feedback || f.ReturnPathPrefix != "bounce" || !f.RefHeader ||
		!f.FeedbackDomain("fbl.example") || !f.FeedbackDomain("BOUNCES.example") || f.FeedbackDomain("d1.test") {
		t.Errorf("parsed: %+v listener feedback %v", f, c.SMTPListeners[0].Feedback)
	}
	for bad, key := range map[string]string{
		`return_path_domain = "bounces.example"`:                      "feedback.return_path_domain",
		`secret = "short"`:                                            "feedback.secret",
		"secret = \"0123456789abcdef\"\nreturn_path_prefix = \"a+b\"": "feedback.return_path_prefix",
		`domains = ["not a domain"]`:                                  "feedback.domains",
	} {
		if _, err := Parse("fb.toml", []byte("[feedback]\n"+bad+"\n")); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want an error about %s", bad, err, key)
		}
	}
}
