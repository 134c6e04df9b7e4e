package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// privatePostfix is a Postfix instance of a test's own: its config, queue
// and data directories under a temp dir, run with `postfix -c`, stopped
// when the test ends. Tests use it as a real MTA next to Gannet: a
// smarthost, a next hop that offers DSN, a client relaying through Gannet.
type privatePostfix struct {
	bin                   string
	dir, etc, spool, data string
}

// newPrivatePostfix prepares the directories. It skips the test when it
// cannot (not root, or no postfix user).
func newPrivatePostfix(t *testing.T) *privatePostfix {
	t.Helper()
	p := &privatePostfix{bin: needExecutable(t, "/usr/sbin/postfix", "postfix"), dir: t.TempDir()}
	p.etc, p.spool, p.data = filepath.Join(p.dir, "etc"), filepath.Join(p.dir, "spool"), filepath.Join(p.dir, "data")
	for _, d := range []string{p.etc, p.spool, p.data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// data_directory must belong to the mail_owner, who must be able to
	// reach it (t.TempDir makes 0700 directories).
	for _, d := range []string{filepath.Dir(p.dir), p.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", p.data).CombinedOutput(); err != nil {
		t.Skipf("cannot prepare a private Postfix (needs root and the postfix user): %v %s", err, out)
	}
	return p
}

// mainCF is the main.cf every private instance shares — its directories,
// no local delivery, its own log file — followed by more.
func (p *privatePostfix) mainCF(hostname, domain, interfaces, more string) string {
	return fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %s
data_directory = %s
mail_owner = postfix
inet_interfaces = %s
inet_protocols = ipv4
myhostname = %s
mydomain = %s
mydestination =
alias_maps =
alias_database =
local_transport = error:local delivery is disabled
maillog_file = %s/maillog
maillog_file_prefixes = %s
smtp_connection_cache_on_demand = no
`, p.spool, p.data, interfaces, hostname, domain, p.dir, p.dir) + more
}

// masterCF is master.cf: the smtpd line given, then Postfix's services.
func masterCF(smtpd string) string {
	master := smtpd + "\n"
	for _, l := range []string{
		"pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
		"tlsmgr unix - - n 1000? 1 tlsmgr", "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce",
		"defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify",
		"flush unix n - n 1000? 0 flush", "proxymap unix - - n - - proxymap", "proxywrite unix - - n - 1 proxymap",
		"smtp unix - - n - - smtp", "relay unix - - n - - smtp", "showq unix n - n - - showq",
		"error unix - - n - - error", "retry unix - - n - - error", "discard unix - - n - - discard",
		"local unix - n n - - local", "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache",
		"postlog unix-dgram n - n - 1 postlogd",
	} {
		master += l + "\n"
	}
	return master
}

// logs returns Postfix's log so far.
func (p *privatePostfix) logs() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// start writes main.cf, master.cf and the other files into the config
// directory, starts Postfix, and waits for the banner on listen; the test's
// end stops it (and shows its log when the test failed).
func (p *privatePostfix) start(t *testing.T, mainCF, masterCF string, files map[string]string, listen string) {
	t.Helper()
	all := map[string]string{"main.cf": mainCF, "master.cf": masterCF}
	for name, content := range files {
		all[name] = content
	}
	for name, content := range all {
		if err := os.WriteFile(filepath.Join(p.etc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(p.bin, "-c", p.etc, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, tail(p.logs(), 4000))
	}
	t.Cleanup(func() {
		_ = exec.Command(p.bin, "-c", p.etc, "stop").Run()
		// Wait for the master process to go (its pid file names it).
		pidFile := filepath.Join(p.spool, "pid", "master.pid")
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			b, err := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if t.Failed() {
			t.Logf("--- postfix maillog:\n%s", tail(p.logs(), 6000))
		}
	})
	waitBanner(t, listen, nil, 30*time.Second)
}
