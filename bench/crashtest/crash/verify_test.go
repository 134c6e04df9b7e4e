package crash

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blastMessage builds a message as smtpblast sends it, with gannet's
// folded Received header in front.
func blastMessage(id, body string) string {
	sum := sha256.Sum256([]byte(body))
	return "Received: from blast.example.test ([127.0.0.1])\r\n\tby relay.crash.test with ESMTP id x; Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
		"From: smtpblast <blast@example.test>\r\nTo: <user1@crash.test>\r\nSubject: smtpblast " + id + "\r\n" +
		"Message-ID: <" + id + "@blast.example.test>\r\nX-Blast-Id: " + id + "\r\nX-Blast-Sum: " + hex.EncodeToString(sum[:]) + "\r\n\r\n" + body
}

func TestCheckMessage(t *testing.T) {
	good := blastMessage("r001-7", "line one\r\n.dot\r\n")
	if id, why := checkMessage([]byte(good)); id != "r001-7" || why != "" {
		t.Fatalf("intact message: %q %q", id, why)
	}
	cases := map[string]string{
		"body byte":  strings.Replace(good, "line one", "line 0ne", 1),
		"body cut":   strings.TrimSuffix(good, "\r\n"),
		"subject":    strings.Replace(good, "Subject: smtpblast r001-7", "Subject: smtpblast r001-8", 1),
		"message-id": strings.Replace(good, "<r001-7@", "<r001-9@", 1),
		"no sum":     strings.Replace(good, "X-Blast-Sum", "X-Blast-Sun", 1),
	}
	for name, msg := range cases {
		if _, why := checkMessage([]byte(msg)); why == "" {
			t.Errorf("%s: altered message passed", name)
		}
	}
}

func TestVerdict(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dump"), 0o755)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("blast-r001.ids", "q1\tr1-1\nq2\tr1-2\nq3\tr1-3\n")
	write("blast-r002.ids", "q4\tr2-1\n")
	// r1-3 lost; r1-1 delivered twice; r2-1 corrupted; x-9 unacknowledged.
	write("sink.ids", "r1-1\nr1-2\nr1-1\nr2-1\nx-9\n")
	write("dump/000000001.eml", blastMessage("r1-1", "a\r\n"))
	write("dump/000000002.eml", blastMessage("r1-2", "b\r\n"))
	write("dump/000000003.eml", blastMessage("r1-1", "a\r\n"))
	write("dump/000000004.eml", strings.Replace(blastMessage("r2-1", "c\r\n"), "c\r\n", "C\r\n", 1))
	write("dump/000000005.eml", blastMessage("x-9", "d\r\n"))
	r := &Report{}
	if err := verdict(r, []string{filepath.Join(dir, "blast-r001.ids"), filepath.Join(dir, "blast-r002.ids")}, dir); err != nil {
		t.Fatal(err)
	}
	if r.Acknowledged != 4 || r.Delivered != 4 || r.Lost != 1 || r.LostIDs[0] != "r1-3" ||
		r.Corrupted != 1 || r.Duplicates != 1 || r.Unacked != 1 || r.OK() {
		t.Fatalf("verdict: %s", r)
	}
}
