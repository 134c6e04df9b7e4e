package bounce

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdataDir finds the shared third-party test data (see
// /work/shared/testdata/README.md), read in place: $GANNET_TESTDATA, else
// the shared folder next to the repository. Without it the test fails when
// CI=true and is skipped loudly otherwise.
func testdataDir(t testing.TB, sub string) string {
	t.Helper()
	base := os.Getenv("GANNET_TESTDATA")
	if base == "" {
		base = filepath.Join("..", "..", "..", "shared", "testdata")
	}
	dir := filepath.Join(base, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data missing: %v (set GANNET_TESTDATA)", err)
		}
		t.Skipf("SKIPPING: shared test data missing: %v (set GANNET_TESTDATA)", err)
	}
	return dir
}

// readTSV reads a tab-separated file with a header line into maps keyed by
// the header's column names.
func readTSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var header []string
	var rows []map[string]string
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if header == nil {
			header = fields
			continue
		}
		row := make(map[string]string, len(header))
		for i, h := range header {
			if i < len(fields) {
				row[h] = fields[i]
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
