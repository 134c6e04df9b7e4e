package blast

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSizeDist(t *testing.T) {
	got, err := ParseSizeDist("2k:70,20k:25,100k:5")
	want := []Weighted[int]{{2048, 70}, {20480, 25}, {102400, 5}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v", got, err)
	}
	if got, err := ParseSizeDist("1500"); err != nil || !reflect.DeepEqual(got, []Weighted[int]{{1500, 1}}) {
		t.Errorf("single size: %v, %v", got, err)
	}
	for _, bad := range []string{"", "2x", "2k:0", "2k:-1", "-5"} {
		if _, err := ParseSizeDist(bad); err == nil {
			t.Errorf("ParseSizeDist(%q) accepted", bad)
		}
	}
	if n, err := ParseSize("1MiB"); err != nil || n != 1<<20 {
		t.Errorf("ParseSize(1MiB) = %d, %v", n, err)
	}
}

func TestParseDomainsAndRate(t *testing.T) {
	got, err := ParseDomains("a.test:3, b.test")
	if err != nil || !reflect.DeepEqual(got, []Weighted[string]{{"a.test", 3}, {"b.test", 1}}) {
		t.Errorf("ParseDomains = %v, %v", got, err)
	}
	if _, err := ParseDomains("a@b.test"); err == nil {
		t.Error("accepted a domain with @")
	}
	for in, want := range map[string]float64{"500": 500, "500/s": 500, "600/m": 10, "3600/h": 1} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseRate("5/d"); err == nil {
		t.Error("ParseRate accepted /d")
	}
}

// Generated bodies have lines of at most 78 characters, some starting with
// ".", and dot-stuffing doubles exactly those dots.
func TestBodyText(t *testing.T) {
	for _, n := range []int{2, 100, 2048, 100 << 10} {
		b := bodyText(n)
		if len(b) < n || len(b) > n+80 {
			t.Errorf("bodyText(%d) has %d bytes", n, len(b))
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Errorf("bodyText(%d) does not end with CRLF", n)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
		dots := 0
		for _, l := range lines {
			if len(l) > 78 || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("bad line %q", l)
			}
			if strings.HasPrefix(l, ".") {
				dots++
			}
		}
		if n >= 2048 && dots < 3 {
			t.Errorf("bodyText(%d): only %d dot lines", n, dots)
		}
		stuffed := string(dotStuff(b))
		want := strings.ReplaceAll("\r\n"+string(b), "\r\n.", "\r\n..")[2:]
		if stuffed != want {
			t.Errorf("dotStuff(bodyText(%d)) wrong", n)
		}
	}
}

// TestExtraHeaders: -header fields go into every message's header section,
// before the MIME fields; a field that is not "Name: value" on one line is
// refused.
func TestExtraHeaders(t *testing.T) {
	cfg := Config{Server: "127.0.0.1:1", Headers: []string{"X-Campaign: spring", "X-Type: bulk"}}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	var m message
	newGenerator(&cfg).next(&m, 1, rand.New(rand.NewPCG(1, 0)), time.Now())
	if !strings.Contains(string(m.header), "\r\nX-Campaign: spring\r\nX-Type: bulk\r\nMIME-Version: 1.0\r\n") {
		t.Errorf("header section:\n%s", m.header)
	}
	for _, bad := range []string{"X-Campaign", "X Campaign: a", "X-A: b\r\nBcc: c@d.test", ": v"} {
		c := Config{Server: "127.0.0.1:1", Headers: []string{bad}}
		if err := c.setDefaults(); err == nil {
			t.Errorf("header %q accepted", bad)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {HTTPURL: "http://127.0.0.1:1", HTTPMode: "bulk"}} {
		if err := cfg.setDefaults(); err == nil {
			t.Errorf("setDefaults(%+v) accepted", cfg)
		}
	}
	if _, err := httpEndpoint("ftp://x", "message"); err == nil {
		t.Error("httpEndpoint accepted ftp")
	}
}

// -domains @FILE reads the list from a file, and the recipients' domains
// follow the weights (picked by a binary search over the running sums).
func TestDomainsFileAndWeights(t *testing.T) {
	f := filepath.Join(t.TempDir(), "domains")
	os.WriteFile(f, []byte("# three\na.test:1, b.test:2\nc.test:7\n\n"), 0o644)
	doms, err := ParseDomains("@" + f)
	if err != nil || !reflect.DeepEqual(doms, []Weighted[string]{{"a.test", 1}, {"b.test", 2}, {"c.test", 7}}) {
		t.Fatalf("ParseDomains(@file) = %v, %v", doms, err)
	}
	if _, err := ParseDomains("@" + filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing file was accepted")
	}
	cfg := Config{Server: "127.0.0.1:1", Domains: doms}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	g := newGenerator(&cfg)
	rng := rand.New(rand.NewPCG(1, 0))
	count := map[string]int{}
	var m message
	for i := range 10000 {
		g.next(&m, uint64(i+1), rng, time.Now())
		count[m.rcpts[0][strings.IndexByte(m.rcpts[0], '@')+1:]]++
	}
	for d, want := range map[string]int{"a.test": 1000, "b.test": 2000, "c.test": 7000} {
		if got := count[d]; got < want*9/10 || got > want*11/10 {
			t.Errorf("%s: %d of 10000 recipients, want about %d", d, got, want)
		}
	}
}
