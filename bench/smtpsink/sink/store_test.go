package sink

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMessageKey(t *testing.T) {
	cases := map[string]string{
		"X-Blast-Id: r-1\r\nMessage-ID: <m@x>\r\n\r\nbody": "r-1",
		"Message-ID: <m@x>\r\nx-blast-id:r-2\r\n\r\n":      "r-2",
		"Message-Id:  <m@x> \r\nSubject: s\r\n\r\n":        "<m@x>",
		"Subject: s\r\n\r\nX-Blast-Id: in-body\r\n":        "",
		"X-Blast-Identity: no\r\n\r\n":                     "",
		"":                                                 "",
		"X-Blast-Id: lf-only\n\nbody":                      "lf-only",
	}
	for in, want := range cases {
		if got := MessageKey([]byte(in)); got != want {
			t.Errorf("MessageKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// Dump files hold the body byte-exact and the envelope; the ids file gets one
// line per accepted message, in acceptance order.
func TestDumpAndIDs(t *testing.T) {
	dir := t.TempDir()
	ids := filepath.Join(dir, "ids.txt")
	s := startSink(t, Config{DumpDir: filepath.Join(dir, "dump"), IDsFile: ids})
	var bodies []string
	for i := 1; i <= 3; i++ {
		body := fmt.Sprintf("X-Blast-Id: run-%d\r\nMessage-ID: <%d@example.test>\r\n\r\n.dot\r\nline %d\r\n", i, i, i)
		if i == 3 {
			body = fmt.Sprintf("Message-ID: <%d@example.test>\r\n\r\nno blast id\r\n", i)
		}
		bodies = append(bodies, body)
		if err := smtp.SendMail(s.Addr(), nil, "a@example.test", []string{"b@example.test"}, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for i, body := range bodies {
		base := filepath.Join(dir, "dump", fmt.Sprintf("%09d", i+1))
		got, err := os.ReadFile(base + ".eml")
		if err != nil || string(got) != body {
			t.Errorf("message %d: %q, %v; want %q", i+1, got, err, body)
		}
		var m Message
		env, err := os.ReadFile(base + ".json")
		if err != nil || json.Unmarshal(env, &m) != nil {
			t.Fatalf("envelope %d: %s %v", i+1, env, err)
		}
		if m.Seq != uint64(i+1) || m.From != "a@example.test" || len(m.Rcpts) != 1 || m.Size != len(body) || m.Helo == "" {
			t.Errorf("envelope %d = %+v", i+1, m)
		}
	}
	s.Close()
	got, err := os.ReadFile(ids)
	if err != nil {
		t.Fatal(err)
	}
	if want := "run-1\nrun-2\n<3@example.test>\n"; string(got) != want {
		t.Errorf("ids file = %q, want %q", got, want)
	}
}

func TestStatsHandler(t *testing.T) {
	s := startSink(t, Config{})
	if err := smtp.SendMail(s.Addr(), nil, "a@example.test", []string{"b@example.test"}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Messages != 1 || st.Replies[354] != 1 || st.Connections != 1 {
		t.Errorf("stats = %+v", st)
	}
	if line := st.String(); !strings.Contains(line, "msgs=1 ") || !strings.Contains(line, "354:1") {
		t.Errorf("summary line %q", line)
	}
}
