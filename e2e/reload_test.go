package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gannet/bench/smtpblast/blast"
	bsink "gannet/bench/smtpsink/sink"
)

// TestE2EReloadOnSIGHUP: SIGHUP makes bin/gannet re-read its config file.
// A new [shaping."d1.test"] rate shows in gannet_site_effective_rate; a
// broken file is refused with FILE:LINE problems on stderr, and the relay
// keeps running with the configuration it had.
func TestE2EReloadOnSIGHUP(t *testing.T) {
	w := newRelayWorld(t)
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	g := w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: `
[shaping."d1.test"]
max_message_rate = "600/m"
`})
	id := dlvSend(t, g, "a@"+domain1, "")
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	dlvWaitMessages(t, rcv, 1)

	series := `gannet_site_effective_rate{site="mx.d1.test",source=""} `
	waitRate := func(want string) {
		t.Helper()
		waitFor(t, 10*time.Second, "gannet_site_effective_rate "+want, func() (bool, string) {
			resp, err := http.Get("http://" + g.HTTPAddr + "/metrics")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(body), series+want+"\n"), grepLines(string(body), "gannet_site_effective_rate")
		})
	}
	waitRate("10")

	orig, err := os.ReadFile(g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(from, to string) {
		t.Helper()
		if !strings.Contains(string(orig), from) {
			t.Fatalf("config lacks %q", from)
		}
		if err := os.WriteFile(g.ConfigPath, []byte(strings.Replace(string(orig), from, to, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := g.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(`max_message_rate = "600/m"`, `max_message_rate = "1800/m"`)
	waitRate("30")
	waitFor(t, 5*time.Second, "the reload on stderr", func() (bool, string) {
		return strings.Contains(g.p.out.String(), "config reloaded"), g.p.out.String()
	})

	// A broken file: unknown key; the relay keeps 30/s and keeps delivering.
	rewrite(`max_message_rate = "600/m"`, `max_message_rate = "120/m"`+"\nno_such_key = 1")
	waitFor(t, 5*time.Second, "the refused reload on stderr", func() (bool, string) {
		out := g.p.out.String()
		return strings.Contains(out, g.ConfigPath+":") && strings.Contains(out, "no_such_key") &&
			strings.Contains(out, "keeping the running configuration"), out
	})
	if g.p.exited() {
		t.Fatal("gannet exited after a broken config was reloaded")
	}
	id = dlvSend(t, g, "b@"+domain1, "")
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	waitRate("30")
}

// blastBinary builds (once per run) bench/smtpblast.
func blastBinary(t *testing.T) string {
	t.Helper()
	r := suite.build("bench/smtpblast", "smtpblast")
	if r.err != nil {
		missingPeer(t, "bin/smtpblast", fmt.Sprintf("%v\n%s", r.err, tail(r.out, 2000)))
	}
	return r.path
}

// blastRun is one smtpblast process writing its acked ids and a JSON
// summary.
type blastRun struct {
	p    *proc
	ids  string
	name string
}

func startBlast(t *testing.T, bin, dir, name, server string, d time.Duration) *blastRun {
	t.Helper()
	ids := filepath.Join(dir, name+".ids")
	p := startProc(t, bin, "-server", server, "-connections", "8", "-rate", "400/s", "-duration", d.String(),
		"-domains", domain1, "-size", "2k", "-ids", ids, "-run-id", name, "-json", "-progress", "0")
	return &blastRun{p: p, ids: ids, name: name}
}

// wait waits for the run to end and returns its summary.
func (b *blastRun) wait(t *testing.T) blast.Result {
	t.Helper()
	select {
	case <-b.p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("smtpblast %s did not end", b.name)
	}
	out := b.p.out.String()
	var r blast.Result
	if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:strings.LastIndex(out, "}")+1]), &r) != nil {
		t.Fatalf("smtpblast %s: no JSON summary:\n%s", b.name, out)
	}
	return r
}

// acked reads the X-Blast-Ids of the run's acknowledged messages.
func (b *blastRun) acked(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(b.ids)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if _, id, ok := strings.Cut(l, "\t"); ok {
			out = append(out, id)
		}
	}
	return out
}

// TestE2EReloadListenersUnderLoad: under smtpblast load on two SMTP
// listeners (8 connections at 400 messages/s each; the machine is shared),
// `gannet reload` removes one and adds another. The listener
// kept loses no session (no refusal, no connection error); the removed
// one drains (its sessions end with 421 after their transaction); the
// added one takes mail at once; every message acknowledged on any of the
// three is delivered. Then a broken file: `gannet reload` lists every
// problem and exits 1, and the relay keeps its configuration.
func TestE2EReloadListenersUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: about 20 s of load")
	}
	w := newRelayWorld(t)
	ids := map[string]int{}
	var mu sync.Mutex
	rcv, err := bsink.Start(bsink.Config{Listen: []string{hostPort(mxIP1, w.port)}, OnMessage: func(m *bsink.Message) {
		if id, _ := headerValue(m.Data, "X-Blast-Id"); id != "" {
			mu.Lock()
			ids[id]++
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rcv.Close() })
	bin := blastBinary(t)
	oldAddr := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	newAddr := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	listener := func(name, addr string) string {
		return fmt.Sprintf("\n[[smtp_listener]]\nname = %q\nlisten = %q\nhostname = \"relay.e2e.test\"\nrelay_hosts = [\"127.0.0.1/32\"]\n", name, addr)
	}
	g := w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: listener("old", oldAddr)})
	orig, err := os.ReadFile(g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kept := startBlast(t, bin, dir, "kept", g.SMTPAddr, 12*time.Second)
	removed := startBlast(t, bin, dir, "removed", oldAddr, 12*time.Second)
	time.Sleep(3 * time.Second)

	next := strings.Replace(string(orig), listener("old", oldAddr), listener("new", newAddr), 1)
	if err := os.WriteFile(g.ConfigPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runGannetCLI(t, g, "reload")
	if code != 0 || !strings.Contains(out, `smtp_listener "new" added`) || !strings.Contains(out, `smtp_listener "old" removed`) {
		t.Fatalf("gannet reload: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("gannet reload:\n%s", out)
	added := startBlast(t, bin, dir, "added", newAddr, 5*time.Second)

	rk, rr, ra := kept.wait(t), removed.wait(t), added.wait(t)
	t.Logf("kept: acked %d failed %d conn errors %d replies %v", rk.Acked, rk.Failed, rk.ConnErrors, rk.Replies)
	t.Logf("removed: acked %d failed %d conn errors %d replies %v", rr.Acked, rr.Failed, rr.ConnErrors, rr.Replies)
	t.Logf("added: acked %d failed %d conn errors %d replies %v", ra.Acked, ra.Failed, ra.ConnErrors, ra.Replies)
	if rk.Acked == 0 || rr.Acked == 0 || ra.Acked == 0 {
		t.Fatal("a load did not run")
	}
	if rk.Failed != 0 || rk.ConnErrors != 0 {
		t.Errorf("the kept listener dropped sessions or refused mail: failed %d, connection errors %d, %v", rk.Failed, rk.ConnErrors, rk.Errors)
	}
	if ra.Failed != 0 || ra.ConnErrors != 0 {
		t.Errorf("the added listener refused mail: failed %d, connection errors %d, %v", ra.Failed, ra.ConnErrors, ra.Errors)
	}
	if rr.Replies[421] == 0 {
		t.Errorf("the removed listener's sessions were not drained with 421: replies %v", rr.Replies)
	}
	var all []string
	for _, b := range []*blastRun{kept, removed, added} {
		all = append(all, b.acked(t)...)
	}
	if len(all) != int(rk.Acked+rr.Acked+ra.Acked) {
		t.Errorf("ids files hold %d ids, the runs acked %d", len(all), rk.Acked+rr.Acked+ra.Acked)
	}
	waitFor(t, 2*time.Minute, "every acknowledged message delivered", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for _, id := range all {
			if ids[id] == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d of %d missing, e.g. %q", len(missing), len(all), missing[:min(len(missing), 5)])
	})
	if c, err := net.DialTimeout("tcp", oldAddr, time.Second); err == nil {
		c.Close()
		t.Error("the removed listener still listens")
	}

	// A broken file: every problem listed, exit 1, nothing applied.
	bad := strings.Replace(next, `timeout = "2s"`, "timeout = \"3 days\"\nno_such_key = 1", 1)
	bad = strings.Replace(bad, listener("new", newAddr), listener("new", newAddr)+"max_message_size = \"lots\"\n", 1)
	if err := os.WriteFile(g.ConfigPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runGannetCLI(t, g, "reload")
	t.Logf("gannet reload of a broken file: exit %d\n%s%s", code, out, errOut)
	if code != 1 {
		t.Errorf("gannet reload of a broken file: exit %d, want 1", code)
	}
	for _, want := range []string{"not applied", g.ConfigPath + ":", "resolver.timeout", "resolver.no_such_key", "max_message_size"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("gannet reload of a broken file does not say %q:\n%s", want, errOut)
		}
	}
	// A changed spool: refused whole.
	moved := strings.Replace(next, "/spool\"", "/spool2\"", 1)
	if err := os.WriteFile(g.ConfigPath, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runGannetCLI(t, g, "reload"); code != 1 || !strings.Contains(errOut, "[spool] changed") {
		t.Errorf("gannet reload of a new spool path: exit %d\n%s", code, errOut)
	}
	c := dialSMTP(t, "127.0.0.1", newAddr)
	c.Quit()
}
