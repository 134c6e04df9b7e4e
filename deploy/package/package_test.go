package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The packaged config is the built-in default with the spool and logs under
// /var/lib/gannet, a header that says where mail goes, and loopback listeners
// only; a default that stops matching is an error, not a silent difference.
func TestPackagedConfig(t *testing.T) {
	def, err := os.ReadFile("../../engine/config/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := packagedConfig(def)
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	for _, want := range []string{
		"\n" + `path = "/var/lib/gannet/spool"` + "\n",
		"\n" + `path = "/var/lib/gannet/logs"` + "\n",
		`listen = "127.0.0.1:2525"`,
		`listen = "127.0.0.1:8000"`,
		"system resolver (/etc/resolv.conf)",
		"relay_to",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("packaged config lacks %q", want)
		}
	}
	if strings.Contains(s, "./data") {
		t.Errorf("packaged config still names ./data")
	}
	if !strings.HasSuffix(s, string(def[bytes.LastIndex(def, []byte("\n[[http_listener]]")):])) {
		t.Errorf("packaged config does not end as the default does")
	}

	open := bytes.Replace(def, []byte(`listen = "127.0.0.1:8000"`), []byte(`listen = "0.0.0.0:8000"`), 1)
	if _, err := packagedConfig(open); err == nil || !strings.Contains(err.Error(), "0.0.0.0:8000") {
		t.Errorf("a default listening on 0.0.0.0 packaged without error (%v)", err)
	}
	moved := bytes.Replace(def, []byte(`path = "./data/logs"`), []byte(`path = "./var/logs"`), 1)
	if _, err := packagedConfig(moved); err == nil {
		t.Errorf("a default without ./data/logs packaged without error")
	}
}

// TestDebInstallsAndServes builds the package, installs it into this system
// with dpkg, upgrades it over an edited config, checks what it installed
// (conffile kept, gannet user, /var/lib/gannet owned by it), has
// systemd-analyze verify the unit, runs the installed binary as the gannet
// user with the packaged config (its two listen ports moved to free ones),
// checks that it answers EHLO and the liveness check, stops it, and purges
// the package. It changes the system, so it runs only with CI=true (CI
// machines are thrown away) or GANNET_TEST_PACKAGE=1, as root, and not
// with -short.
func TestDebInstallsAndServes(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	if testing.Short() {
		t.Skip("SKIPPED with -short: builds and installs the .deb")
	}
	if !ci && os.Getenv("GANNET_TEST_PACKAGE") != "1" {
		t.Skip("SKIPPED: installs the gannet .deb into this system with dpkg; runs with CI=true or GANNET_TEST_PACKAGE=1 (as root)")
	}
	need := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf(format, args...)
		}
		t.Skipf("SKIPPED: "+format, args...)
	}
	if os.Getuid() != 0 {
		need("dpkg -i needs root (uid %d)", os.Getuid())
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "systemd-analyze", "runuser", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			need("%s is missing (scripts/install-test-peers.sh installs it)", tool)
		}
	}

	tmp := t.TempDir()
	binDir := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/gannet", "./bench/smtpblast", "./bench/smtpsink")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false -tags=pebblegozstd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	debPath, err := buildDeb(options{binDir: binDir, repoDir: "../..", outDir: tmp, version: "0.1.0", arch: hostArch(t), compression: "none"})
	if err != nil {
		t.Fatal(err)
	}

	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// A run that died half way may have left the package: start clean (a
	// conffile it edited would make dpkg ask a question nobody answers).
	exec.Command("dpkg", "--purge", "gannet").Run()
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "gannet").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge gannet: %v\n%s", err, out)
		}
		for _, gone := range []string{"/usr/bin/gannet", unitPath, configPath, dataDir} {
			if _, err := os.Stat(gone); err == nil {
				t.Errorf("%s is still there after dpkg --purge", gone)
			}
		}
	})
	run("dpkg", "-i", debPath)

	// An administrator edits the config; an upgrade (postinst runs again, the
	// user and directory exist) keeps the edit, as a conffile's is kept.
	const edit = "\n# edited by TestDebInstallsAndServes\n"
	f, err := os.OpenFile(configPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(edit)
	f.Close()
	upgrade, err := buildDeb(options{binDir: binDir, repoDir: "../..", outDir: tmp, version: "0.1.1", arch: hostArch(t), compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	run("dpkg", "-i", upgrade)
	if v := run("dpkg-query", "-W", "-f=${Version}", "gannet"); v != "0.1.1-1" {
		t.Errorf("installed version %q after the upgrade, want 0.1.1-1", v)
	}
	if conf, err := os.ReadFile(configPath); err != nil || !strings.HasSuffix(string(conf), edit) {
		t.Errorf("the upgrade lost the edit of %s (%v)", configPath, err)
	}

	if c := run("dpkg-query", "-W", "-f=${Conffiles}", "gannet"); !strings.Contains(c, configPath) {
		t.Errorf("%s is not a conffile: %q", configPath, c)
	}
	u, err := user.Lookup("gannet")
	if err != nil {
		t.Fatalf("postinst made no gannet user: %v", err)
	}
	if u.HomeDir != dataDir {
		t.Errorf("gannet's home is %s, want %s", u.HomeDir, dataDir)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if g, err := user.LookupGroup("gannet"); err != nil || g.Gid != u.Gid {
		t.Errorf("group gannet %+v, %v; user's gid %s", g, err, u.Gid)
	}
	checkOwner := func(path string, wantUID, wantGID int, wantMode os.FileMode) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != wantUID || int(st.Gid) != wantGID || fi.Mode().Perm() != wantMode {
			t.Errorf("%s: uid %d gid %d mode %v, want %d %d %v", path, st.Uid, st.Gid, fi.Mode().Perm(), wantUID, wantGID, wantMode)
		}
	}
	checkOwner(dataDir, uid, gid, 0o750)
	checkOwner(configPath, 0, gid, 0o640)

	if out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput(); err != nil || strings.Contains(string(out), "gannet.service") {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	run("runuser", "-u", "gannet", "--", "/usr/bin/gannet", "check-config", "-config", configPath)

	// The packaged config with its listen ports moved to free ones (2525
	// and 8000 may be taken on a shared machine); nothing else changes.
	conf, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr, httpAddr := freeAddr(t), freeAddr(t)
	conf = bytes.Replace(conf, []byte(`listen = "127.0.0.1:2525"`), []byte(`listen = "`+smtpAddr+`"`), 1)
	conf = bytes.Replace(conf, []byte(`listen = "127.0.0.1:8000"`), []byte(`listen = "`+httpAddr+`"`), 1)
	override := filepath.Join(dataDir, "test-ports.toml")
	if err := os.WriteFile(override, conf, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(override, 0, gid); err != nil {
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	srv := exec.Command("runuser", "-u", "gannet", "--", "/usr/bin/gannet", "serve", "-config", override)
	srv.Dir = dataDir // the unit's WorkingDirectory
	srv.Stdout, srv.Stderr = &stderr, &stderr
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// SIGTERM to gannet itself, as systemd sends it: runuser then
		// exits with gannet's status (a SIGTERM to runuser would kill it).
		pid := -srv.Process.Pid
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", srv.Process.Pid, srv.Process.Pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) == 1 {
				pid, _ = strconv.Atoi(f[0])
			}
		}
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("gannet serve after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("gannet serve did not stop within 30s of SIGTERM\n%s", stderr.String())
		}
	}
	defer stop()

	ehlo := smtpEHLO(t, smtpAddr, exited, &stderr)
	if !strings.HasPrefix(ehlo, "250-") || !strings.Contains(ehlo, "PIPELINING") || !strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO answered %q", ehlo)
	}
	resp, err := http.Get("http://" + httpAddr + "/api/check-liveness/v1")
	if err != nil {
		t.Errorf("liveness: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("liveness answered %s", resp.Status)
		}
	}
	stop()

	// Everything it made belongs to gannet: it ran as gannet, in /var/lib/gannet.
	for _, made := range []string{dataDir + "/spool", dataDir + "/logs"} {
		fi, err := os.Stat(made)
		if err != nil {
			t.Errorf("the relay made no %s: %v\n%s", made, err, stderr.String())
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s belongs to uid %d, want gannet (%d)", made, st.Uid, uid)
		}
	}
}

// smtpEHLO waits up to 20 s for the relay to listen on addr, reads the
// banner, sends EHLO and returns the whole reply (then QUIT).
func smtpEHLO(t *testing.T, addr string, exited <-chan error, stderr *bytes.Buffer) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var c net.Conn
	for {
		var err error
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("gannet serve exited before listening: %v\n%s", err, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 20s: %v\n%s", addr, err, stderr.String())
		}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func() string {
		var all strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the reply: %v (so far %q)", err, all.String())
			}
			all.WriteString(line)
			if len(line) < 4 || line[3] != '-' {
				return all.String()
			}
		}
	}
	if b := reply(); !strings.HasPrefix(b, "220 ") {
		t.Fatalf("banner %q", b)
	}
	fmt.Fprintf(c, "EHLO package-test.example.test\r\n")
	ehlo := reply()
	fmt.Fprintf(c, "QUIT\r\n")
	reply()
	return ehlo
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// hostArch is dpkg's name for this machine's architecture.
func hostArch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
