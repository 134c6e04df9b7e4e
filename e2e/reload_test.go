package e2e

import (
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
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
