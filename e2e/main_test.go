package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one `go build` of a program under test.
const buildTimeout = 5 * time.Minute

// programs builds the repository's programs at most once per test run and
// shares the result between tests. It is the only state kept across tests:
// TestMain creates it and removes its directory at the end.
type programs struct {
	dir string // temp dir holding the built binaries

	mu     sync.Mutex
	builds map[string]*buildResult
}

type buildResult struct {
	path string
	err  error
	out  string
}

var suite *programs

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gannet-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	suite = &programs{dir: dir, builds: map[string]*buildResult{}}
	code := m.Run()
	stopRabbit() // events_test.go: the broker some tests share
	os.RemoveAll(dir)
	os.Exit(code)
}

// inCI reports whether missing peers must fail tests instead of skipping them.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// repoRoot finds the directory holding the go.mod of module gannet, walking up
// from the test's working directory (the e2e package directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 10 {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module gannet")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("go.mod of module gannet not found above the working directory")
}

// build compiles ./<pkg> of the repository once and returns the binary's path.
func (p *programs) build(pkg, name string) *buildResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.builds[pkg]; ok {
		return r
	}
	r := &buildResult{}
	p.builds[pkg] = r
	root, err := repoRoot()
	if err != nil {
		r.err = err
		return r
	}
	if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
		r.err = fmt.Errorf("%s does not exist yet: %w", pkg, err)
		return r
	}
	r.path = filepath.Join(p.dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "pebblegozstd", "-o", r.path, "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	out, err := cmd.CombinedOutput()
	r.out = string(out)
	if err != nil {
		r.err = fmt.Errorf("go build ./%s: %w", pkg, err)
	}
	return r
}

// gannetBinary returns the path of the gannet program, building it on first
// use, or skips the test when the relay is not ready to be tested end to end:
// GANNET_E2E_PENDING=1, or the build fails. With CI=true a failed build fails
// the test unless GANNET_E2E_PENDING=1.
func gannetBinary(t testing.TB) string {
	t.Helper()
	if os.Getenv("GANNET_E2E_PENDING") == "1" {
		t.Skip("GANNET_E2E_PENDING=1: the relay is not finished yet; unset it to run this end-to-end test")
	}
	if bin := os.Getenv("GANNET_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("GANNET_BIN=%s: %v", bin, err)
		}
		return abs
	}
	r := suite.build("cmd/gannet", "gannet")
	if r.err != nil {
		msg := fmt.Sprintf("cannot build bin/gannet, skipping the end-to-end test: %v\n%s", r.err, tail(r.out, 4000))
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return r.path
}

// smtpsinkBinary returns the path of bench/smtpsink (or $SMTPSINK_BIN), or
// treats it as a missing peer.
func smtpsinkBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("SMTPSINK_BIN"); bin != "" {
		return bin
	}
	r := suite.build("bench/smtpsink", "smtpsink")
	if r.err != nil {
		missingPeer(t, "bin/smtpsink", fmt.Sprintf("bench/smtpsink does not build yet: %v\n%s", r.err, tail(r.out, 2000)))
	}
	return r.path
}

// missingPeer fails the test in CI and skips it loudly elsewhere.
func missingPeer(t testing.TB, peer, why string) {
	t.Helper()
	msg := fmt.Sprintf("PEER MISSING: %s (%s); `make peers` installs the Debian ones", peer, why)
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip("!!! " + msg)
}

// needExecutable returns path if it is an executable file, else treats it as a
// missing peer.
func needExecutable(t testing.TB, path, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	missingPeer(t, path, "Debian package "+pkg)
	return ""
}

// needPythonModule checks that /usr/bin/python3 can import mod.
func needPythonModule(t testing.TB, mod, pkg string) string {
	t.Helper()
	py := needExecutable(t, "/usr/bin/python3", "python3")
	if err := exec.Command(py, "-c", "import "+mod).Run(); err != nil {
		missingPeer(t, "python3 module "+mod, "Debian package "+pkg)
	}
	return py
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
