package config

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata")

// TestManyMistakes loads a file with a mistake of every kind and compares
// every problem found, in one run, with testdata/mistakes.golden (what
// `gannet check-config` prints for it; cmd/gannet checks that too). Run
// with -update to rewrite the golden file after a deliberate change.
func TestManyMistakes(t *testing.T) {
	t.Chdir("testdata")
	_, err := Load("mistakes.toml")
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("Load = %v, want Errors", err)
	}
	got := es.Error() + "\n"
	if *update {
		if err := os.WriteFile("mistakes.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("mistakes.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("problems:\n%s\nwant (testdata/mistakes.golden):\n%s", got, want)
	}
}
