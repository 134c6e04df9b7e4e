package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func messageBody(t testing.TB) ([]byte, []byte) {
	pdf := []byte("%PDF-1.4\n\x00\x01\x02\xff binary")
	return mustJSON(t, map[string]any{
		"from":    "Jürgen Sender <sender@example.test>",
		"to":      []string{"Alice <alice@example.test>", "bob@example.test"},
		"cc":      []string{"carol@example.test"},
		"bcc":     []string{"secret@example.test", "BOB@example.test"},
		"subject": "Grüße — your invoice",
		"headers": map[string]string{"X-Campaign-Ref": "spring", "Reply-To": "help@example.test"},
		"text":    "Hello Alice,\nyour invoice is attached.\n",
		"html":    "<p>Hello <b>Alice</b></p>",
		"attachments": []map[string]string{
			{"filename": "invoice.pdf", "content_type": "application/pdf", "content": base64.StdEncoding.EncodeToString(pdf)},
		},
		"campaign": "spring",
	}), pdf
}

// checkBuilt parses the spooled message the way a mail client would and
// checks what the request asked for.
func checkBuilt(t *testing.T, m Message, pdf []byte) {
	t.Helper()
	if m.From != "sender@example.test" {
		t.Errorf("envelope from %q", m.From)
	}
	// Bcc is an envelope recipient; BOB@ duplicates bob@ only if the local
	// part matched exactly, which it does not: both are kept.
	want := []string{"alice@example.test", "bob@example.test", "carol@example.test", "secret@example.test", "BOB@example.test"}
	if !slices.Equal(m.Recipients, want) {
		t.Errorf("recipients %q", m.Recipients)
	}
	if m.Campaign != "spring" {
		t.Errorf("campaign %q", m.Campaign)
	}
	if bytes.Contains(bytes.ReplaceAll(m.Body, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("bare LF in the body")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	if h.Get("Bcc") != "" || bytes.Contains(m.Body, []byte("secret@")) {
		t.Errorf("Bcc leaked into the message")
	}
	dec := new(mime.WordDecoder)
	if s, _ := dec.DecodeHeader(h.Get("Subject")); s != "Grüße — your invoice" {
		t.Errorf("subject %q", s)
	}
	if mid := h.Get("Message-ID"); !strings.HasPrefix(mid, "<mid") || !strings.HasSuffix(mid, "@relay.example.test>") {
		t.Errorf("message-id %q", h.Get("Message-ID"))
	}
	if h.Get("Date") != "Wed, 06 May 2026 07:08:09 +0000" {
		t.Errorf("date %q", h.Get("Date"))
	}
	if h.Get("Reply-To") != "help@example.test" || h.Get("X-Campaign-Ref") != "spring" {
		t.Errorf("reply-to %q x-campaign-ref %q", h.Get("Reply-To"), h.Get("X-Campaign-Ref"))
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Name != "Alice" {
		t.Errorf("To %v %v", to, err)
	}
	from, _ := h.AddressList("From")
	if len(from) != 1 || from[0].Name != "Jürgen Sender" {
		t.Errorf("From %v", from)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content-type %q", h.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	alt, err := mr.NextPart()
	if err != nil || !strings.HasPrefix(alt.Header.Get("Content-Type"), "multipart/alternative") {
		t.Fatalf("first part %v %v", alt, err)
	}
	att, err := mr.NextRawPart()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, att))
	if !bytes.Equal(data, pdf) || !strings.Contains(att.Header.Get("Content-Disposition"), "invoice.pdf") {
		t.Errorf("attachment %q %q", data, att.Header.Get("Content-Disposition"))
	}
	pythonCheck(t, m.Body)
}

// pythonCheck parses body with Python's email package (mimebuild's test
// script) and fails on any defect it reports.
func pythonCheck(t *testing.T, body []byte) map[string]any {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s required", py)
		}
		t.Skipf("SKIPPING: %s missing", py)
	}
	cmd := exec.Command(py, "../mimebuild/testdata/parse_email.py")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var p map[string]any
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if d, _ := p["defects"].([]any); len(d) > 0 {
		t.Fatalf("python defects %v", d)
	}
	return p
}

func TestMessageGoClient(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body, pdf := messageBody(t)
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/v1/message", body, nil)
	if a.status != 202 || a.json["id"] != "id0000" || a.json["recipients"] != float64(5) {
		t.Fatalf("answer %s", a)
	}
	msgs := inj.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	checkBuilt(t, msgs[0], pdf)
	if msgs[0].Tenant != "" {
		t.Errorf("tenant %q", msgs[0].Tenant)
	}
}

// From an untrusted address with a key: the key's tenant is bound.
func TestMessageCurlWithKey(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body, pdf := messageBody(t)
	a := curl(t, "127.0.0.9", "POST", base+"/v1/message", body, map[string]string{"Authorization": "Bearer acme-key"})
	if a.status != 202 || a.json["recipients"] != float64(5) {
		t.Fatalf("answer %s", a)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content-type %q", ct)
	}
	msgs := inj.messages()
	if len(msgs) != 1 || msgs[0].Tenant != "acme" {
		t.Fatalf("messages %d tenant %q", len(msgs), msgs[0].Tenant)
	}
	checkBuilt(t, msgs[0], pdf)
}

func TestMessageSingleStringAndTextOnly(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body := []byte(`{"from":"a@example.test","to":"b@example.test","subject":"Hi","text":"plain\n","tenant":"t1"}`)
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/v1/message", body, nil)
	if a.status != 202 || a.json["recipients"] != float64(1) {
		t.Fatalf("answer %s", a)
	}
	m := inj.messages()[0]
	if m.Tenant != "t1" || !bytes.Contains(m.Body, []byte("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain\r\n")) {
		t.Errorf("tenant %q body\n%s", m.Tenant, m.Body)
	}
}
