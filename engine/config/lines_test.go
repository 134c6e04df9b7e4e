package config

import "testing"

func TestLineIndex(t *testing.T) {
	src := `# comment
top = 1
[a]
x = [
  "one",  # a comment with ] and [
  "two",
]
y = """
z = 3
"""
"quoted.key" = 2
dotted . key = 3
[[arr]]
k = 1
[[arr]]
k = 2
[arr.sub]
k = 3
[t."gmail.com"]
v = 'lit'
inline = { p = 1 }
`
	ix := indexLines(src)
	for _, tt := range []struct {
		path []string
		want int
	}{
		{at("top"), 2},
		{at("a"), 3},
		{at("a", "x"), 4},
		{at("a", "y"), 8},
		{at("a", "z"), 3}, // inside a string: not a key; falls back to [a]
		{at("a", "quoted.key"), 11},
		{at("a", "dotted", "key"), 12},
		{at("arr", 0), 13},
		{at("arr", 0, "k"), 14},
		{at("arr", 1, "k"), 16},
		{at("arr", 1, "sub", "k"), 18},
		{at("arr", 2, "k"), 0},
		{at("t", "gmail.com", "v"), 20},
		{at("t", "gmail.com", "inline", "p"), 21},
		{at("nope"), 0},
		{at("T", "Gmail.COM", "v"), 20},
	} {
		if got := ix.line(tt.path); got != tt.want {
			t.Errorf("line(%s) = %d, want %d", displayPath(tt.path), got, tt.want)
		}
	}
	if got := ix.occurrence(at("arr", "k"), 1); got != 16 {
		t.Errorf("second arr.k at %d", got)
	}
	if got := ix.occurrence(at("t", "gmail.com", "inline", "q"), 0); got != 21 {
		t.Errorf("key inside an inline table at %d", got)
	}
	if got := ix.lineWithValue(at("arr", "k"), "2"); got != 16 {
		t.Errorf("arr.k = 2 at %d", got)
	}
}

// FuzzParse feeds arbitrary text to the loader: it must return a config or
// errors, never panic, and every error must name the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[spool]\npath = \"x\"\n"))
	f.Add([]byte("[[smtp_listener]]\nlisten = \"127.0.0.1:1\"\nmax_message_size = \"1MiB\"\n"))
	f.Add([]byte("a = [\n'''\n]\n'''\n]\n[shaping.\"x\"]\nconnection_limit = 0\n"))
	f.Add(defaultTOMLForFuzz())
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("f.toml", src)
		if err == nil && c == nil {
			t.Fatal("nil config and nil error")
		}
		if err != nil {
			for _, e := range err.(Errors) {
				if e.File != "f.toml" {
					t.Fatalf("error without file: %v", e)
				}
			}
		}
		indexLines(string(src))
	})
}

func defaultTOMLForFuzz() []byte { return DefaultTOML() }
