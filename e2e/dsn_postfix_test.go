package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dsnStartPostfix runs a private Postfix (its own config and queue
// directories under a temp dir) whose smtpd listens on listen, takes mail
// for anyone from 127.0.0.0/8 and relays it to relayhost ("ip:port"). It
// is Gannet's next hop as an MX: a real MTA that offers DSN.
func dsnStartPostfix(t *testing.T, listen, relayhost string) {
	t.Helper()
	postfix := needExecutable(t, "/usr/sbin/postfix", "postfix")
	dir := t.TempDir()
	etc, spool, data := filepath.Join(dir, "etc"), filepath.Join(dir, "spool"), filepath.Join(dir, "data")
	for _, d := range []string{etc, spool, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// data_directory must belong to the mail_owner, who must be able to
	// reach it (t.TempDir makes 0700 directories).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", data).CombinedOutput(); err != nil {
		t.Skipf("cannot prepare a private Postfix (needs root and the postfix user): %v %s", err, out)
	}
	host, port, _ := strings.Cut(listen, ":")
	rhost, rport, _ := strings.Cut(relayhost, ":")
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
inet_interfaces = all
inet_protocols = ipv4
myhostname = pf.dsn.test
mydomain = dsn.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_transport = error:local delivery is disabled
relayhost = [%[3]s]:%[4]s
smtp_tls_security_level = none
maillog_file = %[5]s/maillog
maillog_file_prefixes = %[5]s
smtp_connection_cache_on_demand = no
`, spool, data, rhost, rport, dir)
	master := fmt.Sprintf("%s:%s inet n - n - - smtpd\n", host, port)
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
	for name, content := range map[string]string{"main.cf": main, "master.cf": master} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		return tail(string(b), 4000)
	}
	if out, err := exec.Command(postfix, "-c", etc, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, logs())
	}
	t.Cleanup(func() {
		_ = exec.Command(postfix, "-c", etc, "stop").Run()
		pidFile := filepath.Join(spool, "pid", "master.pid")
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
			t.Logf("--- postfix maillog:\n%s", logs())
		}
	})
	waitBanner(t, listen, nil, 30*time.Second)
}

// TestE2EDSNPostfix: a private Postfix is the MX Gannet delivers to. It
// offers DSN, so Gannet hands it RET, ENVID, NOTIFY and ORCPT; Postfix's
// smtpd takes them (its syntax checks are the real ones) and passes them on
// to the smtp-sink it relays to, where they are seen as Gannet sent them.
// Gannet sends no "relayed" DSN: Postfix answers for it now.
func TestE2EDSNPostfix(t *testing.T) {
	w := newRelayWorld(t)
	const sinkIP = "127.0.0.5" // not in the test zone: only Postfix uses it
	sink := startSmtpSink(t, hostPort(sinkIP, w.port))
	dsnStartPostfix(t, hostPort(mxIP1, w.port), hostPort(sinkIP, w.port))
	back := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{}) // the sender's domain
	g := w.gannet(t, gannetConfig{SendBounces: true})

	sender := "app@" + domain2
	c := dialSMTP(t, "", g.SMTPAddr)
	for _, cmd := range []string{
		"MAIL FROM:<" + sender + "> RET=HDRS ENVID=env+2B42",
		"RCPT TO:<a@" + domain1 + "> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Orig+2BA@" + domain1,
		"RCPT TO:<b@" + domain1 + "> NOTIFY=NEVER",
	} {
		if r := c.Cmd(cmd); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: %q", cmd, r)
		}
	}
	id := acceptedID(t, c.Data(simpleMessage(sender, "a@"+domain1, "through postfix", "Postfix passes DSN on.\n")))
	c.Quit()

	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 2, deliveryMax)
	got := waitArrivals(t, sink, 2, 30*time.Second)
	var dump string
	for _, a := range got {
		dump += string(readFile(t, a.File))
	}
	// Postfix writes the parameters in its own order, and an ORCPT of its
	// own for a recipient that had none (RFC 3461 §4.2 allows it).
	for _, want := range []struct {
		line   string
		params []string
	}{
		{"X-Mail-Args: <" + sender + ">", []string{"RET=HDRS", "ENVID=env+2B42"}},
		{"X-Rcpt-Args: <a@" + domain1 + ">", []string{"NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;Orig+2BA@" + domain1}},
		{"X-Rcpt-Args: <b@" + domain1 + ">", []string{"NOTIFY=NEVER"}},
	} {
		var line string
		for _, l := range strings.Split(dump, "\n") {
			if strings.HasPrefix(l, want.line+" ") {
				line = l
			}
		}
		fields := strings.Fields(line)
		for _, p := range want.params {
			if !slices.Contains(fields, p) {
				t.Errorf("Postfix did not pass on %s for %q; smtp-sink saw:\n%s", p, want.line, dump)
			}
		}
	}
	time.Sleep(2 * time.Second)
	if n := len(back.arrivals(t)); n != 0 {
		t.Errorf("%d DSNs from Gannet after delivery to Postfix, which offers DSN; want none", n)
	}
}
