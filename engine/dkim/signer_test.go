package dkim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rfc8463 loads the RFC 8463 Appendix A keys and records.
func rfc8463(t *testing.T) (dir string, recs records) {
	dir = filepath.Join(sharedVectors(t), "rfc8463")
	recs = records{}
	for _, line := range strings.Split(string(readFile(t, filepath.Join(dir, "keys.txt"))), "\n") {
		if name, rec, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			recs[name] = rec
		}
	}
	return dir, recs
}

// TestSignRFC8463 signs RFC 8463's unsigned example with its Appendix A.1
// keys (Ed25519 seed and the 1024-bit RSA key, allowed here only) and checks
// the signatures with go-msgauth against the A.2 records, and the body hash
// against the one published in A.3.
func TestSignRFC8463(t *testing.T) {
	dir, recs := rfc8463(t)
	s := newSigners(t, []KeyConfig{
		{Domain: "football.example.com", Selector: "brisbane", KeyFile: filepath.Join(dir, "brisbane.ed25519.seed.b64")},
		{Domain: "football.example.com", Selector: "test", KeyFile: filepath.Join(dir, "test.rsa.pem")},
	}, withMinRSABits(1024))
	signed := sign(t, s, readFile(t, filepath.Join(dir, "unsigned.eml")), "football.example.com")
	errs := verifyGo(t, signed, recs)
	if len(errs) != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", len(errs), signed)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("signature %d: go-msgauth: %v\n%s", i, err, signed)
		}
	}
	if out, ok := verifyPython(t, signed, recs); !ok {
		t.Errorf("dkimpy rejects:\n%s\n%s", out, signed)
	}
	if got, want := tagValue(signed, "bh"), tagValue(readFile(t, filepath.Join(dir, "signed.eml")), "bh"); got != want {
		t.Errorf("bh=%s, RFC 8463 A.3 has %s", got, want)
	}
	checkSignTime(t, signed)
	if got := tagValue(signed, "a"); got != "ed25519-sha256" {
		t.Errorf("first signature a=%s", got)
	}
	if x := tagValue(signed, "x"); x != "" {
		t.Errorf("x=%s without WithExpiry", x)
	}
}

// checkSignTime checks "t=" against the real clock, which Sign reads by
// default.
func checkSignTime(t *testing.T, signed []byte) int64 {
	t.Helper()
	ts, err := strconv.ParseInt(tagValue(signed, "t"), 10, 64)
	if now := time.Now().Unix(); err != nil || ts < now-60 || ts > now+1 {
		t.Errorf("t=%s, want about now (%d): %v", tagValue(signed, "t"), now, err)
	}
	return ts
}

// TestBodyHashRFC6376Example signs the RFC 6376 §3.4.6 example and checks
// that "bh=" is the SHA-256 of the relaxed body the RFC gives, i.e. that the
// signatures use relaxed body canonicalization; and the published hash of
// an empty body.
func TestBodyHashRFC6376Example(t *testing.T) {
	var ex struct {
		InputHeader string `json:"input_header"`
		InputBody   string `json:"input_body"`
		RelaxedBody string `json:"relaxed_body"`
		Extra       struct {
			RelaxedEmptyBH string `json:"sha256_of_relaxed_empty_body_bh"`
		} `json:"extra_rules_from_rfc6376_3_4"`
	}
	raw := readFile(t, filepath.Join(sharedVectors(t), "rfc6376-canonicalization.json"))
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	ed := loadTestKey(t, "ed25519-pkcs8.pem")
	s := newSigners(t, []KeyConfig{{Domain: "example.com", Selector: "s", KeyFile: ed.file}})
	msg := "From: a@example.com\r\n" + ex.InputHeader + "\r\n" + ex.InputBody
	sum := sha256.Sum256([]byte(ex.RelaxedBody))
	if got, want := tagValue(sign(t, s, []byte(msg), "example.com"), "bh"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("bh=%s, want SHA-256 of the RFC's relaxed body %s", got, want)
	}
	if got := tagValue(sign(t, s, []byte("From: a@example.com\r\n\r\n"), "example.com"), "bh"); got != ex.Extra.RelaxedEmptyBH {
		t.Errorf("empty body bh=%s, want %s", got, ex.Extra.RelaxedEmptyBH)
	}
	if got := tagValue(sign(t, s, []byte(msg), "example.com"), "c"); got != "relaxed/relaxed" {
		t.Errorf("c=%s", got)
	}
}

const plainMsg = "From: Joe <joe@sender.example>\r\n" +
	"To: Suzie <suzie@rcpt.example>\r\n" +
	"Subject:   Is   dinner\r\n\tready? \r\n" +
	"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n" +
	"Message-ID: <1@sender.example>\r\n" +
	"Received: from x by y; Fri, 11 Jul 2003 21:00:37 -0700\r\n" +
	"\r\n" +
	"Hi.  \r\n\r\nWe lost\t the game.\r\n\r\n\r\n"

func TestSignedHeaderList(t *testing.T) {
	ed := loadTestKey(t, "ed25519-pkcs8.pem")
	s := newSigners(t, []KeyConfig{{Domain: "sender.example", Selector: "s1", KeyFile: ed.file}})
	signed := sign(t, s, []byte(plainMsg), "sender.example")
	// Over-signed: From, To, Subject; present once: Date, Message-ID;
	// absent: List-Unsubscribe(-Post) (not listed); Received never signed.
	if got, want := tagValue(signed, "h"), "From:From:To:To:Subject:Subject:Date:Message-ID"; got != want {
		t.Errorf("h=%s\nwant %s", got, want)
	}
	noTo := strings.Replace(plainMsg, "To: Suzie <suzie@rcpt.example>\r\n", "", 1)
	signed = sign(t, s, []byte(noTo), "sender.example")
	if got, want := tagValue(signed, "h"), "From:From:To:Subject:Subject:Date:Message-ID"; got != want {
		t.Errorf("without To: h=%s\nwant %s", got, want)
	}
	for _, line := range strings.Split(string(signed), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d bytes (RFC 5322 §2.1.1): %q", len(line), line)
		}
	}
}

// TestSignVerifies signs several kinds of message with both algorithms and
// checks each with go-msgauth and with dkimpy.
func TestSignVerifies(t *testing.T) {
	rsaKey := loadTestKey(t, "rsa2048-pkcs1.pem")
	edKey := loadTestKey(t, "ed25519-pkcs8.pem")
	messages := map[string]string{
		"ascii": plainMsg,
		"latin1-body": "From: joe@sender.example\r\nTo: a@rcpt.example\r\nSubject: 8-bit\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
			"Gr\xfc\xdfe aus K\xf6ln, \xe7a va?  \r\n\r\n",
		"utf8-headers": "From: =?utf-8?q?J=C3=B6rg?= <j\xc3\xb6rg@sender.example>\r\n" +
			"To: \xc3\x89lodie <\xc3\xa9lodie@rcpt.example>\r\nSubject: Gr\xc3\xbc\xc3\x9fe  \xf0\x9f\x90\xa6\r\n" +
			"List-Unsubscribe: <https://sender.example/u/1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n",
		"empty-body":  "From: joe@sender.example\r\nSubject: nothing\r\n\r\n",
		"header-only": "From: joe@sender.example\r\nSubject: nothing\r\n",
		"long-folded": "From: joe@sender.example\r\nTo: " + strings.Repeat("someone@rcpt.example, ", 40) + "x@rcpt.example\r\n" +
			"Subject: " + strings.Repeat("long ", 100) + "\r\n\r\n" + strings.Repeat("body line\r\n", 3000),
	}
	for _, tc := range []struct {
		name string
		key  testKey
	}{{"rsa-sha256", rsaKey}, {"ed25519-sha256", edKey}} {
		s := newSigners(t, []KeyConfig{{Domain: "sender.example", Selector: "sel", KeyFile: tc.key.file}})
		recs := records{"sel._domainkey.sender.example": tc.key.record}
		var names []string
		var signedMsgs [][]byte
		for mname, msg := range messages {
			signed := sign(t, s, []byte(msg), "sender.example")
			if got := tagValue(signed, "a"); got != tc.name {
				t.Errorf("%s: a=%s", mname, got)
			}
			// go-msgauth cannot read a header that has no empty line
			// after it ("failed to read header: EOF"); dkimpy can.
			if mname != "header-only" {
				if errs := verifyGo(t, signed, recs); len(errs) != 1 || errs[0] != nil {
					t.Errorf("%s/%s: go-msgauth: %v\n%s", tc.name, mname, errs, signed)
				}
			}
			names = append(names, mname)
			signedMsgs = append(signedMsgs, signed)
		}
		out, oks := verifyPythonBatch(t, recs, signedMsgs)
		for i, ok := range oks {
			if !ok {
				t.Errorf("%s/%s: dkimpy rejects:\n%s", tc.name, names[i], out)
			}
		}
	}
}

// TestTwoSignatures: an ESP domain and the customer's domain, one RSA and one
// Ed25519, both verifiable; a domain asked twice or without a key is skipped.
func TestTwoSignatures(t *testing.T) {
	rsaKey := loadTestKey(t, "rsa2048-pkcs8.pem")
	edKey := loadTestKey(t, "ed25519-pkcs8.pem")
	s := newSigners(t, []KeyConfig{
		{Domain: "esp.example", Selector: "esp", KeyFile: rsaKey.file},
		{Domain: "sender.example", Selector: "cust", KeyFile: edKey.file, Headers: []string{"From", "Subject"}},
	})
	recs := records{"esp._domainkey.esp.example": rsaKey.record, "cust._domainkey.sender.example": edKey.record}
	sigs, err := s.Sign([]byte(plainMsg), []string{"Sender.Example.", "esp.example", "sender.example", "nokey.example"})
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(sigs, []byte("DKIM-Signature:")); n != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", n, sigs)
	}
	signed := append(sigs, plainMsg...)
	if got := tagValue(signed, "h"); got != "From:From:Subject:Subject" {
		t.Errorf("customer key h=%s (its own header list)", got)
	}
	for i, err := range verifyGo(t, signed, recs) {
		if err != nil {
			t.Errorf("signature %d: %v", i, err)
		}
	}
	if out, ok := verifyPython(t, signed, recs); !ok || strings.Count(out, ": pass d=") != 2 {
		t.Errorf("dkimpy:\n%s\n%s", out, signed)
	}
	if sigs, err := s.Sign([]byte(plainMsg), []string{"nokey.example"}); sigs != nil || err != nil {
		t.Errorf("domain without key: %q, %v", sigs, err)
	}
}

// TestOverSigning: a From, To or Subject added after signing, or a changed
// Subject, must break the signature; an added trace header must not.
func TestOverSigning(t *testing.T) {
	for _, kname := range []string{"rsa2048-pkcs1.pem", "ed25519-pkcs8.pem"} {
		key := loadTestKey(t, kname)
		s := newSigners(t, []KeyConfig{{Domain: "sender.example", Selector: "sel", KeyFile: key.file}})
		recs := records{"sel._domainkey.sender.example": key.record}
		noTo := strings.Replace(plainMsg, "To: Suzie <suzie@rcpt.example>\r\n", "", 1)
		var names []string
		var want []bool
		var signedMsgs [][]byte
		for _, tc := range []struct {
			name   string
			msg    string
			tamper func(signed string) string
			pass   bool
		}{
			{"untouched", plainMsg, func(m string) string { return m }, true},
			{"Received added on top", plainMsg, func(m string) string { return "Received: from relay by mx; Sat, 1 Mar 2026 12:00:01 +0000\r\n" + m }, true},
			{"second From on top", plainMsg, func(m string) string { return "From: Evil <ceo@bank.example>\r\n" + m }, false},
			{"second From at the bottom", plainMsg, func(m string) string {
				return strings.Replace(m, "\r\n\r\n", "\r\nFrom: Evil <ceo@bank.example>\r\n\r\n", 1)
			}, false},
			{"Subject changed", plainMsg, func(m string) string { return strings.Replace(m, "dinner", "lunch", 1) }, false},
			{"second Subject", plainMsg, func(m string) string { return "Subject: Urgent: wire money\r\n" + m }, false},
			{"To added where there was none", noTo, func(m string) string { return "To: victim@rcpt.example\r\n" + m }, false},
			{"body changed", plainMsg, func(m string) string { return strings.Replace(m, "game", "match", 1) }, false},
		} {
			signed := []byte(tc.tamper(string(sign(t, s, []byte(tc.msg), "sender.example"))))
			errs := verifyGo(t, signed, recs)
			if goOK := len(errs) == 1 && errs[0] == nil; goOK != tc.pass {
				t.Errorf("%s/%s: go-msgauth verification %v, want pass=%v\n%s", kname, tc.name, errs, tc.pass, signed)
			}
			names = append(names, tc.name)
			want = append(want, tc.pass)
			signedMsgs = append(signedMsgs, signed)
		}
		out, oks := verifyPythonBatch(t, recs, signedMsgs)
		for i := range oks {
			if oks[i] != want[i] {
				t.Errorf("%s/%s: dkimpy pass=%v, want %v:\n%s", kname, names[i], oks[i], want[i], out)
			}
		}
	}
}

func TestHas(t *testing.T) {
	ed := loadTestKey(t, "ed25519-pkcs8.pem")
	s := newSigners(t, []KeyConfig{
		{Domain: "example.com", Selector: "a", KeyFile: ed.file},
		{Domain: "例子.test", Selector: "a", KeyFile: ed.file},
	})
	// Exact domains only (no parent match), in any form.
	if !s.Has("Example.COM.") || s.Has("news.example.com") || !s.Has("xn--fsqu00a.test") {
		t.Error("Has")
	}
}

func TestWithExpiry(t *testing.T) {
	ed := loadTestKey(t, "ed25519-pkcs8.pem")
	s := newSigners(t, []KeyConfig{{Domain: "sender.example", Selector: "s", KeyFile: ed.file}}, WithExpiry(72*3600e9))
	signed := sign(t, s, []byte(plainMsg), "sender.example")
	ts := checkSignTime(t, signed)
	x, err := strconv.ParseInt(tagValue(signed, "x"), 10, 64)
	if d := x - ts; err != nil || d < 72*3600-1 || d > 72*3600+1 {
		t.Errorf("x=%s with t=%d, want t+72h: %v", tagValue(signed, "x"), ts, err)
	}
}

func TestNewErrors(t *testing.T) {
	ed := loadTestKey(t, "ed25519-pkcs8.pem")
	missing := filepath.Join(t.TempDir(), "nope.pem")
	for _, tc := range []struct {
		name   string
		keys   []KeyConfig
		is     error
		substr string
	}{
		{"missing key file", []KeyConfig{{Domain: "a.example", Selector: "s", KeyFile: missing}}, os.ErrNotExist, missing},
		{"RSA 1024", []KeyConfig{{Domain: "a.example", Selector: "s", KeyFile: "testdata/rsa1024.pem"}}, ErrWeakKey, "testdata/rsa1024.pem: RSA key too short: 1024 bits"},
		{"ECDSA", []KeyConfig{{Domain: "a.example", Selector: "s", KeyFile: "testdata/ec-p256.pem"}}, ErrUnsupportedKey, "ecdsa"},
		{"empty key_file", []KeyConfig{{Domain: "a.example", Selector: "s"}}, nil, "key_file is empty"},
		{"bad domain", []KeyConfig{{Domain: "a b.example", Selector: "s", KeyFile: ed.file}}, nil, "not a domain name"},
		{"bad selector", []KeyConfig{{Domain: "a.example", Selector: "s;x", KeyFile: ed.file}}, nil, "selector"},
		{"bad header", []KeyConfig{{Domain: "a.example", Selector: "s", KeyFile: ed.file, Headers: []string{"From:"}}}, nil, "bad header name"},
		{"duplicate selector", []KeyConfig{
			{Domain: "a.example", Selector: "s", KeyFile: ed.file},
			{Domain: "A.example", Selector: "s", KeyFile: ed.file}}, nil, "two [[dkim]] entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.keys)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %q does not mention %q", err, tc.substr)
			}
		})
	}
	if s, err := New(nil); err != nil || s.Has("a.example") {
		t.Errorf("New(nil) = %v", err)
	}
}

// TestReload: a key file replaced by garbage keeps the old key (and Reload
// says which file is wrong); a valid new key is picked up.
func TestReload(t *testing.T) {
	oldKey := loadTestKey(t, "rsa2048-pkcs1.pem")
	newKey := loadTestKey(t, "ed25519-pkcs8.pem")
	file := filepath.Join(t.TempDir(), "k.pem")
	copyFile := func(src string) {
		if err := os.WriteFile(file, readFile(t, src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(oldKey.file)
	s := newSigners(t, []KeyConfig{{Domain: "sender.example", Selector: "s", KeyFile: file}})
	check := func(rec string) {
		t.Helper()
		signed := sign(t, s, []byte(plainMsg), "sender.example")
		if errs := verifyGo(t, signed, records{"s._domainkey.sender.example": rec}); len(errs) != 1 || errs[0] != nil {
			t.Errorf("verification: %v", errs)
		}
	}
	check(oldKey.record)

	if err := os.WriteFile(file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.Reload()
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Reload with a broken file: %v", err)
	}
	check(oldKey.record)

	copyFile(newKey.file)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	check(newKey.record)

	if err := s.Replace([]KeyConfig{{Domain: "x.example", Selector: "s", KeyFile: "testdata/rsa1024.pem"}}); err == nil {
		t.Fatal("Replace accepted a 1024-bit key")
	}
	check(newKey.record) // still the old set
	if err := s.Replace([]KeyConfig{{Domain: "x.example", Selector: "s", KeyFile: newKey.file}}); err != nil || s.Has("sender.example") || !s.Has("x.example") {
		t.Fatalf("Replace: %v", err)
	}
}

// TestSignConcurrent signs from many goroutines (run with -race) while the
// keys are reloaded, and checks every signature.
func TestSignConcurrent(t *testing.T) {
	ed := loadTestKey(t, "ed25519-pkcs8.pem")
	rsaKey := loadTestKey(t, "rsa2048-pkcs8.pem")
	s := newSigners(t, []KeyConfig{
		{Domain: "a.example", Selector: "s", KeyFile: ed.file},
		{Domain: "b.example", Selector: "s", KeyFile: rsaKey.file},
	})
	recs := records{"s._domainkey.a.example": ed.record, "s._domainkey.b.example": rsaKey.record}
	var wg sync.WaitGroup
	results := make([][]byte, 16)
	for i := range results {
		wg.Go(func() {
			msg := strings.Replace(plainMsg, "game", "game "+strconv.Itoa(i), 1)
			for range 5 {
				sigs, err := s.Sign([]byte(msg), []string{"a.example", "b.example"})
				if err != nil {
					t.Error(err)
					return
				}
				results[i] = append(sigs, msg...)
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := s.Reload(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for i, signed := range results {
		for j, err := range verifyGo(t, signed, recs) {
			if err != nil {
				t.Errorf("message %d signature %d: %v", i, j, err)
			}
		}
	}
}

// TestSignMessageShared: one Message signed by two Signers (the configured
// keys and a policy script's) gets one body hash, and both signatures
// verify.
func TestSignMessageShared(t *testing.T) {
	rsaKey := loadTestKey(t, "rsa2048-pkcs8.pem")
	edKey := loadTestKey(t, "ed25519-pkcs8.pem")
	cfg := newSigners(t, []KeyConfig{{Domain: "esp.example", Selector: "esp", KeyFile: rsaKey.file}})
	script := newSigners(t, []KeyConfig{{Domain: "sender.example", Selector: "cust", KeyFile: edKey.file}})
	m := NewMessage([]byte(plainMsg))
	a, err := cfg.SignMessage(m, []string{"esp.example"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := script.SignMessage(m, []string{"sender.example"})
	if err != nil {
		t.Fatal(err)
	}
	signed := append(append(a, b...), plainMsg...)
	recs := records{"esp._domainkey.esp.example": rsaKey.record, "cust._domainkey.sender.example": edKey.record}
	for i, err := range verifyGo(t, signed, recs) {
		if err != nil {
			t.Errorf("signature %d: %v", i, err)
		}
	}
	if tagValue(a, "bh") != tagValue(b, "bh") || tagValue(a, "bh") == "" {
		t.Errorf("bh= %s and %s", tagValue(a, "bh"), tagValue(b, "bh"))
	}
	if out, ok := verifyPython(t, signed, recs); !ok {
		t.Errorf("dkimpy:\n%s", out)
	}
}
