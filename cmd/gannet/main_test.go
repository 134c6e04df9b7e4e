package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gannet/engine/config"
)

// buildGannet builds the command once per test binary run into a temp dir.
func buildGannet(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gannet")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false -tags=pebblegozstd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// gannet runs the binary and returns stdout, stderr and the exit status.
func gannet(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildGannet(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("config default", func(t *testing.T) {
		out, _, code := gannet(t, bin, "config", "default")
		if code != 0 || out != string(config.DefaultTOML()) {
			t.Fatalf("exit %d, output differs from DefaultTOML (%d bytes)", code, len(out))
		}
		// What it prints is itself a valid config.
		p := write("default.toml", out)
		if out, _, code := gannet(t, bin, "check-config", "-config", p); code != 0 || out != p+": ok\n" {
			t.Errorf("check-config of the default: exit %d, %q", code, out)
		}
	})

	t.Run("check-config reports FILE:LINE", func(t *testing.T) {
		p := write("bad.toml", "[spool]\ncompression = \"lz4\"\n\n[queue]\nretry_intervl = \"5m\"\n")
		out, _, code := gannet(t, bin, "check-config", "-config", p)
		want := p + `:2: spool.compression: "lz4" is not one of "zstd", "s2", "none"` + "\n" +
			p + ":5: queue.retry_intervl: unknown key; did you mean retry_interval?\n"
		if code != 1 || !sameLines(out, want) {
			t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
		}
	})

	t.Run("check-config reports every mistake", func(t *testing.T) {
		// The file of many mistakes of engine/config, whose expected
		// output is kept there; run from its directory, as the file
		// names key files relative to it.
		cmd := exec.Command(bin, "check-config", "-config", "mistakes.toml")
		cmd.Dir = filepath.Join("..", "..", "engine", "config", "testdata")
		out, err := cmd.Output()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("check-config: %v, want exit 1", err)
		}
		want, rerr := os.ReadFile(filepath.Join(cmd.Dir, "mistakes.golden"))
		if rerr != nil {
			t.Fatal(rerr)
		}
		if string(out) != string(want) {
			t.Errorf("output:\n%s\nwant (engine/config/testdata/mistakes.golden):\n%s", out, want)
		}
	})

	t.Run("config show", func(t *testing.T) {
		script := write("show.lua", "kumo.configure_queue { max_retry_age = \"24h\" }\n")
		p := write("show.toml", "[policy]\nscript = \""+script+"\"\n\n[[smtp_user]]\nname = \"app\"\npassword = \"s3cret\"\n")
		out, errOut, code := gannet(t, bin, "config", "show", "-config", p, "-changed")
		want := "# " + p + ": the keys whose value differs from the built-in configuration\n" +
			"# (after the policy script's overrides)\n" +
			"# Secrets are shown as \"<redacted>\".\n" +
			"\n[[smtp_user]]\nname = \"app\"\npassword = \"<redacted>\"\n" +
			"\n[queue]\nmax_retry_age = \"24h\"\n" +
			"\n[policy]\nscript = \"" + script + "\"\n"
		if code != 0 || out != want {
			t.Errorf("config show -changed: exit %d, stderr %q, output:\n%s\nwant:\n%s", code, errOut, out, want)
		}
		out, _, code = gannet(t, bin, "config", "show", "-config", p)
		for _, w := range []string{"\n[spool]\npath = \"./data/spool\"\ncompression = \"zstd\"\n", "max_retry_age = \"24h\"\n", "retry_interval = \"5m\"\n", "password = \"<redacted>\"\n"} {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("config show: exit %d, no %q in:\n%s", code, w, out)
			}
		}
		if strings.Contains(out, "s3cret") {
			t.Error("config show prints the password")
		}
		bad := write("show-bad.toml", "[spool]\ncompresion = \"zstd\"\n")
		out, _, code = gannet(t, bin, "config", "show", "-config", bad)
		if code != 1 || out != bad+":2: spool.compresion: unknown key; did you mean compression?\n" {
			t.Errorf("config show of a bad file: exit %d, %q", code, out)
		}
	})

	t.Run("check-config of a Lua script", func(t *testing.T) {
		p := write("relay.lua", `kumo.start_smtp_listener { listen = "127.0.0.1:2525", relay_hosts = { "127.0.0.0/8" } }
kumo.configure_queue { retry_interval = "5m", max_retry_age = "72h" }
`)
		if out, _, code := gannet(t, bin, "check-config", "-config", p); code != 0 || out != p+": ok\n" {
			t.Errorf("exit %d, %q", code, out)
		}
		bad := write("bad.lua", "kumo.configure_queue { retry_interval = \"5m\" }\nkumo.configure_queue { foo = 1 }\n")
		out, _, code := gannet(t, bin, "check-config", "-config", bad)
		if want := bad + `:2: kumo.configure_queue: unknown key "foo"` + "\n"; code != 1 || out != want {
			t.Errorf("exit %d, output %q, want %q", code, out, want)
		}
	})

	t.Run("serve refuses a bad Lua script", func(t *testing.T) {
		p := write("serve-bad.lua", "\nkumo.configure_tls { mode = \"maybe\" }\n")
		_, errOut, code := gannet(t, bin, "serve", "-config", p)
		if code != 1 || !strings.Contains(errOut, p+`:2: tls.mode: "maybe" is not one of`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("check-config missing file", func(t *testing.T) {
		out, _, code := gannet(t, bin, "check-config", "-config", filepath.Join(dir, "nope.toml"))
		if code != 1 || !strings.Contains(out, "nope.toml: open ") {
			t.Errorf("exit %d, %q", code, out)
		}
	})

	t.Run("check-config without a file", func(t *testing.T) {
		if _, errOut, code := gannet(t, bin, "check-config"); code != 2 || !strings.Contains(errOut, "-config FILE is required") {
			t.Errorf("exit %d, %q", code, errOut)
		}
	})

	t.Run("serve refuses a bad config", func(t *testing.T) {
		p := write("serve-bad.toml", "[tls]\nmode = \"maybe\"\n")
		_, errOut, code := gannet(t, bin, "serve", "-config", p)
		if code != 1 || !strings.Contains(errOut, p+`:2: tls.mode: "maybe" is not one of`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("serve stops on SIGTERM", func(t *testing.T) {
		data := t.TempDir()
		p := write("serve.toml", "smtp_listener = []\nhttp_listener = []\n"+
			"[spool]\npath = \""+data+"/spool\"\n[log]\npath = \""+data+"/logs\"\n"+
			"[delivery]\nrelay_to = \"127.0.0.1:9\"\n")
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "serve", "-config", p)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve exited with %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not stop within 10s of SIGTERM")
		}
	})

	t.Run("version, help and unknown commands", func(t *testing.T) {
		if out, _, code := gannet(t, bin, "version"); code != 0 || !strings.HasPrefix(out, "gannet ") {
			t.Errorf("version: exit %d, %q", code, out)
		}
		if out, _, code := gannet(t, bin, "help"); code != 0 || !strings.Contains(out, "check-config") {
			t.Errorf("help: exit %d, %q", code, out)
		}
		if _, errOut, code := gannet(t, bin, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
			t.Errorf("unknown: exit %d, %q", code, errOut)
		}
		if _, _, code := gannet(t, bin); code != 2 {
			t.Errorf("no command: exit %d", code)
		}
		if _, _, code := gannet(t, bin, "serve", "-bogus"); code != 2 {
			t.Errorf("bad flag: exit %d", code)
		}
	})
}

func sameLines(a, b string) bool {
	x, y := strings.Split(strings.TrimSpace(a), "\n"), strings.Split(strings.TrimSpace(b), "\n")
	if len(x) != len(y) {
		return false
	}
	m := map[string]int{}
	for _, s := range x {
		m[s]++
	}
	for _, s := range y {
		if m[s]--; m[s] < 0 {
			return false
		}
	}
	return true
}
