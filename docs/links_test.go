package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The hand-written pages whose links are checked (bench/results/ holds
// generated tables).
var pages = []string{"README.md", "docs/*.md", "bench/README.md", "bench/results/README.md"}

var (
	fence      = regexp.MustCompile("(?ms)^[ \t]*(```|~~~).*?^[ \t]*(```|~~~)[ \t]*$")
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	inlineLink = regexp.MustCompile(`!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]\n]+\]:\s+<?(\S+?)>?(?:\s|$)`)
	heading    = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
)

// TestRelativeLinksResolve: every relative link of README.md and docs/*.md
// (and bench's READMEs) names a file or directory of this repository, and
// an #anchor names a heading of the page it points at (as GitHub makes
// anchors); no page points at shared/docs/, which is not in the repository.
func TestRelativeLinksResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, g := range pages {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 4 {
		t.Fatalf("found only %v", files)
	}
	checked := 0
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "shared/docs/") {
			t.Errorf("%s names shared/docs/, which is not in the repository (docs/ is)", rel)
		}
		for _, target := range links(string(data)) {
			if isExternal(target) {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
				if !strings.HasPrefix(dest, root+string(filepath.Separator)) && dest != root {
					t.Errorf("%s: link %q leaves the repository", rel, target)
					continue
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: no such file in the repository", rel, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") {
				page, err := os.ReadFile(dest)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(page))[frag] {
					t.Errorf("%s: link %q: no heading with anchor #%s in %s", rel, target, frag, filepath.Base(dest))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link pattern is broken")
	}
}

// links returns the targets of the Markdown links of page, outside code.
func links(page string) []string {
	page = fence.ReplaceAllString(page, "")
	page = codeSpan.ReplaceAllString(page, "")
	var out []string
	for _, m := range inlineLink.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	for _, m := range refLink.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

func isExternal(target string) bool {
	for _, p := range []string{"http://", "https://", "mailto:", "ftp://", "file:"} {
		if strings.HasPrefix(strings.ToLower(target), p) {
			return true
		}
	}
	return false
}

// anchors returns the anchors GitHub gives the headings of page: lower
// case, punctuation but hyphens and underscores dropped, spaces as hyphens, repeats numbered -1, -2, ….
func anchors(page string) map[string]bool {
	page = fence.ReplaceAllString(page, "")
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(page, -1) {
		a := slug(m[1])
		if n := seen[a]; n > 0 {
			out[a+"-"+itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r) || unicode.Is(unicode.Pc, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// The link and anchor rules themselves.
func TestLinkParsing(t *testing.T) {
	page := "# Quick start\n\n## Make targets\n\nSee [ops](#operating-it), [c](docs/contract.md#log-records \"t\"),\n" +
		"`[not](code.md)`, ![img](a.png), [web](https://example.test/x).\n\n```\n[no](fenced.md)\n```\n\n[ref]: bench/README.md\n"
	got := strings.Join(links(page), " ")
	if want := "#operating-it docs/contract.md#log-records a.png https://example.test/x bench/README.md"; got != want {
		t.Errorf("links %q, want %q", got, want)
	}
	a := anchors("# Gannet — the outside contract\n## Templates of `/api/inject/v1`\n## Make targets\n## Make targets\n")
	for _, want := range []string{"gannet--the-outside-contract", "templates-of-apiinjectv1", "make-targets", "make-targets-1"} {
		if !a[want] {
			t.Errorf("no anchor %q in %v", want, a)
		}
	}
}
