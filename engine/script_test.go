package engine

import (
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gannet/engine/policy"
)

// TestReloadPolicyScript: SIGHUP's Reload loads a changed policy script
// into fresh states and the next message sees the new hook; a script that
// no longer loads keeps the running one and the log says why (FILE:LINE).
func TestReloadPolicyScript(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	script := filepath.Join(dir, "policy.lua")
	writeScript := func(s string) {
		t.Helper()
		if err := os.WriteFile(script, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hook := func(version string) string {
		return `kumo.on("smtp_message_received", function(domain, meta)
  kumo.add_header("X-Policy-Version", "` + version + `")
end)
`
	}
	writeScript(hook("1"))
	if err := os.WriteFile(file, []byte(reloadConfigText(dir, "10/s", "6/m", "opportunistic", "X-Tenant",
		"[policy]\nscript = \""+script+"\"\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	e := startLogged(t, cfg, logs)
	version := func() string {
		t.Helper()
		d, err := e.policy().messages.Decide(policy.Message{ID: "m1", Sender: "a@src.test", Recipients: []string{"b@dst.test"},
			Body: []byte("From: a@src.test\r\nSubject: x\r\n\r\nhi\r\n")})
		if err != nil {
			t.Fatal(err)
		}
		for _, ed := range d.Edits {
			if strings.EqualFold(ed.Name, "X-Policy-Version") {
				return ed.Value
			}
		}
		return ""
	}
	if v := version(); v != "1" {
		t.Fatalf("before reload: X-Policy-Version %q, want 1", v)
	}
	if !strings.Contains(logs.String(), "policy script loaded") {
		t.Errorf("no start-up line for the script:\n%s", logs.String())
	}
	old := e.policy().hooks

	writeScript(hook("2"))
	e.Reload()
	if v := version(); v != "2" {
		t.Fatalf("after reload: X-Policy-Version %q, want 2", v)
	}
	if e.policy().hooks == old {
		t.Error("the reload kept the old hooks")
	}
	// The old hooks still answer a call in flight (closed: a state of its own).
	if _, err := old.Decide(policy.Message{ID: "m2", Body: []byte("Subject: y\r\n\r\n")}); err != nil {
		t.Errorf("a call on the replaced hooks: %v", err)
	}

	writeScript("kumo.on(\"smtp_message_received\", function(domain, meta)\n  kumo.add_header(\"X\", \nend)\n")
	e.Reload()
	if v := version(); v != "2" {
		t.Errorf("after a broken script: X-Policy-Version %q, want the running 2", v)
	}
	if out := logs.String(); !strings.Contains(out, "policy.lua:3") || !strings.Contains(out, "keeping the running configuration") {
		t.Errorf("the log does not say why the script was refused:\n%s", out)
	}

}

// TestScriptAuthMeta: smtp_server_auth gets the session's listener, peer
// and mechanism in meta, and its answer decides the AUTH (no
// [[smtp_user]] is configured: the hook alone makes the listener offer
// AUTH).
func TestScriptAuthMeta(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "policy.lua")
	src := `kumo.on("smtp_server_auth", function(user, password, meta)
  local ok = user == "app" and password == "pw" and meta.listener == "sub" and meta.peer == "127.0.0.1" and meta.mechanism == "PLAIN"
  return { ok = ok, tenant = "acme" }
end)
`
	if err := os.WriteFile(script, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(reloadConfigText(dir, "10/s", "6/m", "opportunistic", "X-Tenant",
		"[policy]\nscript = \""+script+"\"\n"), "smtp_listener = []\n", "", 1) + `
[[smtp_listener]]
name = "sub"
listen = "127.0.0.1:0"
relay_hosts = []
auth_require_tls = false
`
	file := filepath.Join(dir, "gannet.toml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	e := startLogged(t, cfg, new(syncBuffer))
	addr := e.SMTPAddrs()[0].String()
	for _, c := range []struct {
		pw string
		ok bool
	}{{"pw", true}, {"wrong", false}} {
		cl, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Auth(smtp.PlainAuth("", "app", c.pw, "127.0.0.1"))
		if (err == nil) != c.ok {
			t.Errorf("AUTH with password %q: %v, want ok=%v", c.pw, err, c.ok)
		}
		cl.Close()
	}
}
