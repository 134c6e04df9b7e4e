package smtpwire

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientAuthTranscripts plays the exchanges of testdata/clientauth
// (described in its README.md) with one ClientAuth.
func TestClientAuthTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/clientauth/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no AUTH transcripts: %v", err)
	}
	var a ClientAuth // one for all: Begin forgets the last exchange
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			playAuthTranscript(t, f, &a)
		})
	}
}

func playAuthTranscript(t *testing.T, path string, a *ClientAuth) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var ext Extensions
	var user, pass, end string
	var reply []string
	var ended bool
	var feedErr error
	feed := func(ln int) {
		if len(reply) == 0 {
			return
		}
		r, n, err := ParseReply([]byte(strings.Join(reply, "\r\n") + "\r\n"))
		if err != nil || n == 0 {
			t.Fatalf("line %d: bad reply %q: %v", ln, reply, err)
		}
		reply = nil
		ended, feedErr = a.Feed(r)
	}
	sc := bufio.NewScanner(fh)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		if kind != "S:" {
			feed(ln)
		}
		switch kind {
		case "@ehlo":
			lines := []string{"server.test"}
			for _, l := range strings.Split(rest, ",") {
				lines = append(lines, strings.TrimSpace(l))
			}
			ext = ParseEHLO(Reply{Code: 250, Lines: lines})
		case "@login":
			user, pass, _ = strings.Cut(rest, " ")
		case "M:":
			mech, err := a.Begin(&ext, user, pass)
			if mech == "" {
				mech = "none"
			}
			if mech != rest {
				t.Fatalf("line %d: mechanism %s, want %s", ln, mech, rest)
			}
			if err != nil {
				ended, feedErr = true, err
			}
		case "C:":
			if ended {
				t.Fatalf("line %d: the exchange has ended", ln)
			}
			if got := string(a.Next(nil)); got != rest+"\r\n" {
				t.Fatalf("line %d: the client writes %q, want %q", ln, got, rest+"\r\n")
			}
		case "S:":
			reply = append(reply, rest)
		case "E:":
			end = rest
		default:
			t.Fatalf("line %d: unknown line %q", ln, line)
		}
	}
	feed(0)
	got := "ok"
	if feedErr != nil {
		got = feedErr.Error()
	}
	if !ended {
		got = "not ended"
	}
	if got != end {
		t.Fatalf("the exchange ends with %q, want %q", got, end)
	}
	if a.mech != "" && (a.user != "" || a.pass != "") {
		t.Fatalf("the credentials are kept after the exchange")
	}
	if n := a.Next(nil); len(n) != 0 {
		t.Fatalf("an ended exchange still writes %q", n)
	}
}
