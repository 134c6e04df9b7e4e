package sink

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// swaks runs the real swaks client against addr and returns its transcript
// and exit error.
func swaks(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("swaks is not installed")
		}
		t.Skip("SKIPPING: swaks is not installed (make peers)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"--server", addr, "--helo", "swaks.example.test",
		"--from", "sender@example.test", "--to", "rcpt@example.test"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// swaks reads the body file with LF endings and sends CRLF, dot-stuffed; the
// sink must store it unstuffed and byte-exact.
func TestSwaks(t *testing.T) {
	tc, err := SelfSignedTLS("sink.example.test")
	if err != nil {
		t.Fatal(err)
	}
	// swaks adds the CRLF before the final dot itself, so the file has no
	// trailing newline.
	body := "Subject: swaks\nX-Blast-Id: sw-1\n\n.leading dot\n..two\n.\nend"
	want := strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
	file := filepath.Join(t.TempDir(), "body.eml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		tls  bool
	}{
		{"plain", nil, false},
		{"pipelining", []string{"--pipeline"}, false},
		{"starttls", []string{"--tls"}, true},
		{"starttls pipelining", []string{"--tls", "--pipeline"}, true},
		{"auth plain", []string{"--tls", "--auth", "PLAIN", "--auth-user", "u", "--auth-password", "p"}, true},
	}
	for _, tc2 := range cases {
		t.Run(tc2.name, func(t *testing.T) {
			s := startSink(t, Config{Keep: true, TLS: tc})
			out, err := swaks(t, s.Addr(), append(tc2.args, "--data", "@"+file)...)
			if err != nil && strings.Contains(out, "TLS not available") {
				if os.Getenv("CI") == "true" {
					t.Fatalf("swaks lacks TLS support (install libnet-ssleay-perl):\n%s", out)
				}
				t.Skipf("SKIPPING: swaks lacks TLS support (install libnet-ssleay-perl):\n%s", out)
			}
			if err != nil {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			msgs := s.Messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d messages\n%s", len(msgs), out)
			}
			if string(msgs[0].Data) != want {
				t.Errorf("body = %q, want %q", msgs[0].Data, want)
			}
			if msgs[0].TLS != tc2.tls || msgs[0].Helo != "swaks.example.test" || msgs[0].Rcpts[0] != "rcpt@example.test" {
				t.Errorf("message = %+v", msgs[0])
			}
		})
	}
}

// Injected failures reach a real client with their codes.
func TestSwaksSeesInjectedCodes(t *testing.T) {
	for _, spec := range []string{"rcpt:550:1:5.1.1 No such user", "mail:451:1:4.7.0 Try later", "dot:421:1"} {
		t.Run(spec, func(t *testing.T) {
			f, err := ParseFailure(spec)
			if err != nil {
				t.Fatal(err)
			}
			s := startSink(t, Config{Faults: Faults{Failures: []Failure{f}}})
			out, err := swaks(t, s.Addr(), "--body", "hello")
			if err == nil {
				t.Fatalf("swaks succeeded against %s\n%s", spec, out)
			}
			if want := "<** " + spec[strings.Index(spec, ":")+1:][:3]; !strings.Contains(out, want) {
				t.Errorf("transcript lacks %q:\n%s", want, out)
			}
			if s.Stats().Messages != 0 {
				t.Error("message accepted despite the fault")
			}
		})
	}
}
