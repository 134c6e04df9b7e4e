package engine

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"gannet/engine/config"
	"gannet/engine/dkim"
)

// signingEngine is an Engine with just what prepare needs: the config with
// [[dkim]] keys (an ESP's RSA key, customer acme's Ed25519 key, customer
// beta's RSA key, and one for a domain no tenant lists), tenants acme (signed
// by the ESP, From its own domain), beta and plain (no domains), and the
// loaded signers. It returns the TXT records by name; the engine's log
// goes to logs.
func signingEngine(t *testing.T) (*Engine, map[string]string) {
	e, recs, _ := signingEngineLog(t)
	return e, recs
}

func signingEngineLog(t *testing.T) (*Engine, map[string]string, *syncBuffer) {
	t.Helper()
	c := policyConfig(t)
	keys := map[string]string{"esp.example": "rsa2048-pkcs8.pem", "acme.example": "ed25519-pkcs8.pem",
		"beta.example": "rsa2048-pkcs1.pem", "unlisted.example": "ed25519-pkcs8.pem"}
	recs := map[string]string{}
	for domain, file := range keys {
		path := filepath.Join("dkim", "testdata", file)
		c.DKIM = append(c.DKIM, config.DKIM{Domain: domain, Selector: "s1", KeyFile: path,
			Headers: dkim.DefaultHeaders()})
		k, err := dkim.LoadKey(path)
		if err != nil {
			t.Fatal(err)
		}
		recs[dkim.RecordName(domain, "s1")], _ = dkim.TXTValue(k.Public())
	}
	c.Tenants = []config.Tenant{
		{Name: "acme", DKIMDomain: "esp.example", DKIMDomains: []string{"acme.example"}, ListUnsubscribe: "https://acme.example/u/{id}"},
		{Name: "beta", DKIMDomain: "beta.example"},
		{Name: "plain"},
	}
	c.Meta.AddMissingHeaders, c.Meta.StripMetaHeaders = true, true
	logs := &syncBuffer{}
	e := &Engine{cfg: c, log: slog.New(slog.NewTextHandler(logs, nil))}
	if err := e.buildSigning(); err != nil {
		t.Fatal(err)
	}
	return e, recs, logs
}

// verify checks every signature of msg with go-msgauth and returns the
// signing domains of those that pass; a failing one fails the test.
func verify(t *testing.T, msg []byte, recs map[string]string) []string {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if r, ok := recs[strings.TrimSuffix(name, ".")]; ok {
				return []string{r}, nil
			}
			return nil, fmt.Errorf("no TXT for %s", name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, v := range vs {
		if v.Err != nil {
			t.Errorf("signature d=%s: %v\n%s", v.Domain, v.Err, msg)
			continue
		}
		ds = append(ds, v.Domain)
	}
	return ds
}

// TestPrepareSignsFinalMessage: a campaign message of tenant acme (by the
// trusted tenant header) From the customer's domain is stripped of its meta
// headers, gets Date, Message-ID and List-Unsubscribe, and is signed by both
// the From domain's key and the tenant's dkim_domain key, with the added
// fields covered by the signatures.
func TestPrepareSignsFinalMessage(t *testing.T) {
	e, recs := signingEngine(t)
	in := "X-Tenant: acme\r\nX-Campaign: spring\r\nFrom: News <news@acme.example>\r\nTo: u@d1.test\r\nSubject: Sale\r\n\r\nHello\r\n"
	p, err := e.prepare(draft{id: "ID1", body: []byte(in), host: "relay.test", trusted: true}, policyTime)
	if err != nil {
		t.Fatal(err)
	}
	if p.tenant != "acme" || p.campaign != "spring" || p.priority != 0 {
		t.Errorf("metadata %+v", p)
	}
	got := string(p.body)
	for _, want := range []string{"Message-ID: <ID1@relay.test>\r\n", "Date: Sun, 01 Mar 2026 12:00:00 +0100\r\n",
		"List-Unsubscribe: <https://acme.example/u/ID1>\r\n", "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("prepared message lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "X-Tenant") || strings.Contains(got, "X-Campaign") {
		t.Errorf("meta headers not stripped:\n%s", got)
	}
	if !strings.HasPrefix(got, "DKIM-Signature:") {
		t.Errorf("signatures must come first:\n%s", got)
	}
	if ds := verify(t, p.body, recs); strings.Join(ds, ",") != "acme.example,esp.example" {
		t.Errorf("verified domains %v, want the From domain and the tenant's dkim_domain", ds)
	}
	for _, h := range []string{"List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID", "Date"} {
		if !strings.Contains(got, ":"+h+":") && !strings.Contains(got, " h="+h+":") && !strings.Contains(got, ":"+h+";") {
			t.Errorf("%s is not in h=:\n%s", h, got)
		}
	}
	// A Received field above the signatures does not break them.
	if ds := verify(t, withReceived([]byte("Received: from x by y; Sun, 1 Mar 2026 12:00:00 +0000\r\n"), p.body), recs); len(ds) != 2 {
		t.Errorf("with Received on top: %v", ds)
	}
}

// TestPrepareTrace: the draft's Received field comes first, above the
// signatures, which still verify; the body below is byte for byte what
// TestPrepareSignsFinalMessage's edits make of it, with the message's own
// bytes unchanged.
func TestPrepareTrace(t *testing.T) {
	e, recs := signingEngine(t)
	trace := "Received: from x by y; Sun, 1 Mar 2026 12:00:00 +0000\r\n"
	in := "X-Tenant: acme\r\nFrom: News <news@acme.example>\r\nX-Campaign: spring\r\nSubject: Sale\r\n\r\nHello\r\n"
	p, err := e.prepare(draft{id: "ID1", body: []byte(in), host: "relay.test", trusted: true, trace: []byte(trace)}, policyTime)
	if err != nil {
		t.Fatal(err)
	}
	got := string(p.body)
	if !strings.HasPrefix(got, trace+"DKIM-Signature:") {
		t.Fatalf("Received must come first, then the signatures:\n%s", got)
	}
	want := "From: News <news@acme.example>\r\nSubject: Sale\r\nDate: Sun, 01 Mar 2026 12:00:00 +0100\r\n" +
		"Message-ID: <ID1@relay.test>\r\nList-Unsubscribe: <https://acme.example/u/ID1>\r\n" +
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHello\r\n"
	if !strings.HasSuffix(got, "\r\n"+want) {
		t.Errorf("content\n%q\nwant it to end in\n%q", got, want)
	}
	if ds := verify(t, p.body, recs); len(ds) != 2 {
		t.Errorf("verified %v, want 2 signatures", ds)
	}
	if in != "X-Tenant: acme\r\nFrom: News <news@acme.example>\r\nX-Campaign: spring\r\nSubject: Sale\r\n\r\nHello\r\n" {
		t.Error("the received bytes were modified")
	}
}

// TestPrepareStripLastField: a message that is all header and ends in a
// meta field without a line end loses that field and gets the added
// fields on lines of their own, without an empty line before them.
func TestPrepareStripLastField(t *testing.T) {
	c := policyConfig(t)
	c.Meta.AddMissingHeaders, c.Meta.StripMetaHeaders = true, true
	e := &Engine{cfg: c}
	p, err := e.prepare(draft{id: "ID9", body: []byte("From: a@b.test\r\nDate: x\r\nX-Tenant: acme"), host: "h"}, policyTime)
	if err != nil {
		t.Fatal(err)
	}
	if want := "From: a@b.test\r\nDate: x\r\nMessage-ID: <ID9@h>\r\n"; string(p.body) != want {
		t.Errorf("got %q, want %q", p.body, want)
	}
}

// TestPrepareTenantSources: the API/AUTH tenant wins over the header; an
// untrusted client's headers are stripped but do not count; mail of a
// domain without a key and a tenant without dkim_domain is not signed.
func TestPrepareTenantSources(t *testing.T) {
	e, _ := signingEngine(t)
	in := []byte("X-Tenant: acme\r\nX-Type: transactional\r\nFrom: a@other.example\r\n\r\nx\r\n")
	p, err := e.prepare(draft{id: "ID2", body: in, host: "h", tenant: "plain", trusted: true}, policyTime)
	if err != nil || p.tenant != "plain" || p.priority != 1 || bytes.Contains(p.body, []byte("DKIM-Signature")) {
		t.Errorf("AUTH tenant: %+v %v\n%s", p, err, p.body)
	}
	p, _ = e.prepare(draft{id: "ID3", body: in, host: "h"}, policyTime)
	if p.tenant != "" || p.priority != 0 || bytes.Contains(p.body, []byte("X-Tenant")) {
		t.Errorf("untrusted: %+v\n%s", p, p.body)
	}
	p, _ = e.prepare(draft{id: "ID4", body: in, host: "h", trusted: true}, policyTime)
	if p.tenant != "acme" || !bytes.Contains(p.body, []byte("d=esp.example")) {
		t.Errorf("header tenant acme must be signed by its dkim_domain:\n%s", p.body)
	}
}

// TestPrepareConcurrent prepares messages from many goroutines, as the
// inbound workers do, and checks every signature (run with -race).
func TestPrepareConcurrent(t *testing.T) {
	e, recs := signingEngine(t)
	var wg sync.WaitGroup
	out := make([][]byte, 16)
	for i := range out {
		wg.Go(func() {
			body := fmt.Appendf(nil, "From: a@acme.example\r\nSubject: %d\r\n\r\nmessage %d\r\n", i, i)
			p, err := e.prepare(draft{id: fmt.Sprint("ID", i), body: body, host: "h", tenant: "acme"}, time.Now())
			if err != nil {
				t.Error(err)
			}
			out[i] = p.body
		})
	}
	wg.Wait()
	for _, m := range out {
		if ds := verify(t, m, recs); len(ds) != 2 {
			t.Errorf("%d signatures verify, want 2", len(ds))
		}
	}
}

// TestBuildSigningErrors: a missing key file stops the engine with an
// error naming the file.
func TestBuildSigningErrors(t *testing.T) {
	c := policyConfig(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	c.DKIM = []config.DKIM{{Domain: "a.example", Selector: "s", KeyFile: missing}}
	err := (&Engine{cfg: c}).buildSigning()
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v does not name %s", err, missing)
	}
	c.Spool.Path = filepath.Join(t.TempDir(), "spool")
	if _, err := New(c, Options{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("New: %v", err)
	}
}
