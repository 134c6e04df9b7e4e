package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsAndBounceKeys: [metrics] max_destination_labels and [bounce]
// rules_file are read, defaulted and checked with FILE:LINE messages.
func TestMetricsAndBounceKeys(t *testing.T) {
	if c := Default(); c.Metrics.MaxDestinationLabels != 50 || c.Bounce.RulesFile != "" {
		t.Errorf("defaults: %+v %+v", c.Metrics, c.Bounce)
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.toml")
	os.WriteFile(rules, []byte("[[rule]]\nclass = \"QuotaIssues\"\npatterns = ['mailbox stuffed']\n"), 0o644)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[metrics]\nmax_destination_labels = 7\n\n[bounce]\nrules_file = \""+rules+"\"\n"), 0o644)
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.MaxDestinationLabels != 7 || c.Bounce.RulesFile != rules {
		t.Errorf("loaded %+v %+v", c.Metrics, c.Bounce)
	}

	badRules := filepath.Join(dir, "bad-rules.toml")
	os.WriteFile(badRules, []byte("[[rule]]\nclass = \"NoSuchClass\"\npatterns = ['x']\n"), 0o644)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[metrics]\nmax_destination_labels = 0\n\n[bounce]\nrules_file = \""+badRules+"\"\n"), 0o644)
	var got []string
	for _, e := range checkFile(bad) {
		got = append(got, e.Error())
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], bad+":2: metrics.max_destination_labels: must be at least 1") ||
		!strings.HasPrefix(got[1], bad+":5: bounce.rules_file: ") || !strings.Contains(got[1], "NoSuchClass") {
		t.Errorf("Check:\n%s", strings.Join(got, "\n"))
	}
}

// TestMetricsCompat: [metrics] compat is "" by default, takes "kumomta",
// and refuses anything else with its line.
func TestMetricsCompat(t *testing.T) {
	if c := Default(); c.Metrics.Compat != "" {
		t.Errorf("default compat %q", c.Metrics.Compat)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[metrics]\ncompat = \"kumomta\"\n"), 0o644)
	if c, err := Load(good); err != nil || c.Metrics.Compat != "kumomta" {
		t.Errorf("Load: %v %+v", err, c)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[metrics]\ncompat = \"powermta\"\n"), 0o644)
	es := checkFile(bad)
	if len(es) != 1 || !strings.HasPrefix(es[0].Error(), bad+":2: metrics.compat: ") || !strings.Contains(es[0].Error(), "kumomta") {
		t.Errorf("Check: %v", es)
	}
}
