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

// FuzzClientAuth feeds server bytes, parsed reply by reply, to an AUTH
// exchange: it never panics, ends within three replies, and never writes
// after it ended.
func FuzzClientAuth(f *testing.F) {
	for _, s := range []string{"235 2.7.0 ok\r\n", "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n", "535 5.7.8 no\r\n", "334\r\n334\r\n334\r\n334\r\n", "454-4.7.0 a\r\n454 b\r\n"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, server string, plain bool) {
		ext := Extensions{Auth: []string{"LOGIN"}}
		if plain {
			ext.Auth = append(ext.Auth, "PLAIN")
		}
		var a ClientAuth
		if _, err := a.Begin(&ext, "u", "p"); err != nil {
			t.Fatal(err)
		}
		buf := []byte(server)
		for fed := 0; ; fed++ {
			if fed > 3 {
				t.Fatalf("not done after %d replies", fed)
			}
			if len(a.Next(nil)) == 0 {
				t.Fatal("nothing to write before the end")
			}
			r, n, err := ParseReply(buf)
			if err != nil || n == 0 {
				return
			}
			buf = buf[n:]
			if done, _ := a.Feed(r); done {
				if len(a.Next(nil)) != 0 {
					t.Fatal("writes after the end")
				}
				return
			}
		}
	})
}
