package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// contract.md names every metric engine/metrics defines (all of them: see
// its package doc) and every config key of the default config, so that a new
// outside name cannot land undocumented.
func TestContractNamesWhatTheCodeHas(t *testing.T) {
	contract, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(contract)

	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`gannet_[a-z_{},]*[a-z}]`).FindAllString(doc, -1) {
		for _, name := range expandBraces(m) {
			documented[name] = true
		}
	}
	inCode := map[string]string{}
	metricName := regexp.MustCompile(`gannet_[a-z_]*[a-z]`)
	err = filepath.WalkDir("../engine/metrics", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, loc := range metricName.FindAllStringIndex(string(src), -1) {
			if loc[1] < len(src) && src[loc[1]] == '_' {
				continue // a prefix the code completes ("gannet_site_messages_" + …)
			}
			name := string(src[loc[0]:loc[1]])
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				name = strings.TrimSuffix(name, suf)
			}
			inCode[name] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inCode) < 20 {
		t.Fatalf("found only %d metric names in engine/metrics: the pattern is broken", len(inCode))
	}
	var missing []string
	for name, path := range inCode {
		if !documented[name] {
			missing = append(missing, name+" ("+path+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("metric %s is not in docs/contract.md, Metrics", m)
	}

	def, err := os.ReadFile("../engine/config/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile(`(?m)^(?:# )?([a-z][a-z_]*) = `).FindAllStringSubmatch(string(def), -1)
	if len(keys) < 50 {
		t.Fatalf("found only %d keys in default.toml: the pattern is broken", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(doc, "`"+k[1]+"`") {
			t.Errorf("config key %s (engine/config/default.toml) is not in docs/contract.md, Config file", k[1])
		}
	}
}

// expandBraces turns "a_{b,c}_d_{e,f}" into a_b_d_e, a_b_d_f, a_c_d_e, a_c_d_f.
func expandBraces(s string) []string {
	i := strings.IndexByte(s, '{')
	j := strings.IndexByte(s, '}')
	if i < 0 || j < i {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(s[i+1:j], ",") {
		out = append(out, expandBraces(s[:i]+alt+s[j+1:])...)
	}
	return out
}
