package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"gannet/engine/config"
	"gannet/engine/dkim"
	"gannet/engine/httpapi"
	"gannet/engine/inbound"
	"gannet/engine/policy"
	"gannet/queue"
	"gannet/smtpwire"
)

var policyTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 3600))

// policyConfig is the default configuration with two tenants that add
// List-Unsubscribe to their bulk mail.
func policyConfig(t testing.TB) *config.Config {
	t.Helper()
	c := config.Default()
	c.Tenants = []config.Tenant{
		{Name: "acme", ListUnsubscribe: "https://acme.example/u/{id}"},
		{Name: "mailonly", ListUnsubscribe: "mailto:unsub@acme.example?subject={id}"},
	}
	return c
}

// policyEngine is an Engine with just what prepare needs: the live policy
// of c and its DKIM keys. Its log goes to the returned buffer.
func policyEngine(t testing.TB, c *config.Config) (*Engine, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	e := &Engine{cfg: c, log: slog.New(slog.NewTextHandler(logs, nil))}
	if err := e.startPolicy(); err != nil {
		t.Fatal(err)
	}
	return e, logs
}

// signingEngine is a policyEngine whose config has [[dkim]] keys (an ESP's
// RSA key, customer acme's Ed25519 key, customer beta's RSA key, and one
// for a domain no tenant lists) and tenants acme (signed by the ESP, From
// its own domain), beta and plain (no domains). It returns the TXT records
// by name.
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
	e, logs := policyEngine(t, c)
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

// testArrival is an SMTP message to u@d1.test as Accept hands it to the
// store path: from a relay host (trusted) or from elsewhere, bound to
// tenant by SMTP AUTH or to none.
func testArrival(e *Engine, body, tenant string, trusted bool) *arrival {
	peer := "192.0.2.1:40000"
	if trusted {
		peer = "127.0.0.1:40000" // in relay-in's relay_hosts
	}
	a := e.smtpArrival(&inbound.Incoming{
		Listener: "relay-in", Hostname: "relay.test", Peer: netip.MustParseAddrPort(peer),
		Envelope: &smtpwire.Envelope{Helo: "client.test", ESMTP: true,
			From: smtpwire.Path{Addr: "a@src.test"}, Rcpts: []smtpwire.Path{{Addr: "u@d1.test"}}},
		Body:   []byte(body),
		Tenant: tenant,
	})
	return &a
}

// prepareTest prepares a as message id and returns it with what follows
// its Received field, which must come first.
func prepareTest(t *testing.T, e *Engine, a *arrival, id string) (prepared, string) {
	t.Helper()
	p, err := e.prepare(e.policy(), a, id, policyTime)
	if err != nil {
		t.Fatal(err)
	}
	want := a.received.ReceivedHeader(id, policyTime)
	if !bytes.HasPrefix(p.final, want) {
		t.Fatalf("the final message does not start with\n%s\n%s", want, p.final)
	}
	return p, string(p.final[len(want):])
}

// TestPrepareSignsFinalMessage: a campaign message of tenant acme (by the
// trusted tenant header) From the customer's domain is stripped of its meta
// headers, gets Date, Message-ID and List-Unsubscribe, and is signed by both
// the From domain's key and the tenant's dkim_domain key, with the added
// fields covered by the signatures, below the Received field.
func TestPrepareSignsFinalMessage(t *testing.T) {
	e, recs := signingEngine(t)
	in := "X-Tenant: acme\r\nX-Campaign: spring\r\nFrom: News <news@acme.example>\r\nTo: u@d1.test\r\nSubject: Sale\r\n\r\nHello\r\n"
	p, got := prepareTest(t, e, testArrival(e, in, "", true), "ID1")
	if m := p.m; m.ID != "ID1" || m.Tenant != "acme" || m.Campaign != "spring" || m.Priority != 0 || m.From != "a@src.test" ||
		len(m.Recipients) != 1 || m.Recipients[0].Addr != "u@d1.test" || !m.Created.Equal(policyTime) {
		t.Errorf("spool record %+v", m)
	}
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
		t.Errorf("signatures must come right after the Received field:\n%s", got)
	}
	if ds := verify(t, p.final, recs); strings.Join(ds, ",") != "acme.example,esp.example" {
		t.Errorf("verified domains %v, want the From domain and the tenant's dkim_domain", ds)
	}
	for _, h := range []string{"List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID", "Date"} {
		if !strings.Contains(got, ":"+h+":") && !strings.Contains(got, " h="+h+":") && !strings.Contains(got, ":"+h+";") {
			t.Errorf("%s is not in h=:\n%s", h, got)
		}
	}
}

// TestPrepareTrace: the Received field comes first, above the signatures,
// which still verify; the message below is byte for byte what the edits
// make of it, with the message's own bytes unchanged.
func TestPrepareTrace(t *testing.T) {
	e, recs := signingEngine(t)
	in := "X-Tenant: acme\r\nFrom: News <news@acme.example>\r\nX-Campaign: spring\r\nSubject: Sale\r\n\r\nHello\r\n"
	a := testArrival(e, in, "", true)
	p, got := prepareTest(t, e, a, "ID1")
	if !strings.HasPrefix(got, "DKIM-Signature:") {
		t.Fatalf("the signatures must follow the Received field:\n%s", p.final)
	}
	want := "From: News <news@acme.example>\r\nSubject: Sale\r\nDate: Sun, 01 Mar 2026 12:00:00 +0100\r\n" +
		"Message-ID: <ID1@relay.test>\r\nList-Unsubscribe: <https://acme.example/u/ID1>\r\n" +
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHello\r\n"
	if !strings.HasSuffix(got, "\r\n"+want) {
		t.Errorf("content\n%q\nwant it to end in\n%q", got, want)
	}
	if ds := verify(t, p.final, recs); len(ds) != 2 {
		t.Errorf("verified %v, want 2 signatures", ds)
	}
	if string(a.msg.Body) != in {
		t.Error("the received bytes were modified")
	}
}

// TestPrepareStripLastField: a message that is all header and ends in a
// meta field without a line end loses that field and gets the added
// fields on lines of their own, without an empty line before them.
func TestPrepareStripLastField(t *testing.T) {
	c := policyConfig(t)
	c.Meta.AddMissingHeaders, c.Meta.StripMetaHeaders = true, true
	e, _ := policyEngine(t, c)
	_, got := prepareTest(t, e, testArrival(e, "From: a@b.test\r\nDate: x\r\nX-Tenant: acme", "", false), "ID9")
	if want := "From: a@b.test\r\nDate: x\r\nMessage-ID: <ID9@relay.test>\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestPrepareTenantSources: the API/AUTH tenant wins over the header; an
// untrusted client's headers are stripped but do not count; mail of a
// domain without a key and a tenant without dkim_domain is not signed.
func TestPrepareTenantSources(t *testing.T) {
	e, _ := signingEngine(t)
	const in = "X-Tenant: acme\r\nX-Type: transactional\r\nFrom: a@other.example\r\n\r\nx\r\n"
	p, got := prepareTest(t, e, testArrival(e, in, "plain", true), "ID2")
	if p.m.Tenant != "plain" || p.m.Priority != 1 || strings.Contains(got, "DKIM-Signature") {
		t.Errorf("AUTH tenant: %+v\n%s", p.m, got)
	}
	p, got = prepareTest(t, e, testArrival(e, in, "", false), "ID3")
	if p.m.Tenant != "" || p.m.Priority != 0 || strings.Contains(got, "X-Tenant") {
		t.Errorf("untrusted: %+v\n%s", p.m, got)
	}
	p, got = prepareTest(t, e, testArrival(e, in, "", true), "ID4")
	if p.m.Tenant != "acme" || !strings.Contains(got, "d=esp.example") {
		t.Errorf("header tenant acme must be signed by its dkim_domain:\n%s", got)
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
			a := testArrival(e, fmt.Sprintf("From: a@acme.example\r\nSubject: %d\r\n\r\nmessage %d\r\n", i, i), "acme", true)
			p, err := e.prepare(e.policy(), a, fmt.Sprint("ID", i), time.Now())
			if err != nil {
				t.Error(err)
			}
			out[i] = p.final
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

// scriptedPolicy stands for a second implementation of the message
// policy: it routes every message to tenant "scripted", sets its campaign
// from the listener, rewrites the Subject, removes X-Internal, prepends a
// field, and fails for a message whose body holds "fail".
type scriptedPolicy struct{}

func (scriptedPolicy) Decide(m policy.Message) (policy.Decision, error) {
	if bytes.Contains(m.Body, []byte("fail")) {
		return policy.Decision{}, errors.New("script error")
	}
	return policy.Decision{
		Tenant: "scripted", Campaign: "from-" + m.Listener, Priority: 1,
		Edits: []policy.HeaderEdit{
			{Kind: policy.Replace, Name: "Subject", Value: "rewritten for " + m.Sender},
			{Kind: policy.Remove, Name: "X-Internal"},
			{Kind: policy.Prepend, Name: "X-Policy", Value: m.ID},
		},
	}, nil
}

// storeEngine is an Engine with a spool and no listener, not started (no
// delivery runs), whose message policy is p.
func storeEngine(t *testing.T, p messagePolicy) *Engine {
	t.Helper()
	e, _, _ := faultEngine(t)
	lp := *e.policy()
	lp.messages = p
	e.live.Store(&lp)
	return e
}

// spooled returns the messages in e's spool by id, with their content.
func spooled(t *testing.T, e *Engine) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := e.spool.Scan(func(m *queue.Message) error {
		b, err := e.spool.Body(m)
		out[m.ID] = fmt.Sprintf("%s|%s|%d\n%s", m.Tenant, m.Campaign, m.Priority, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStorePathBothEntries: SMTP and HTTP messages take the same store
// path: the policy in force (here another implementation than Rules)
// decides routing and header edits for both, and each is spooled with its
// Received field on top, counted under its listener and queued.
func TestStorePathBothEntries(t *testing.T) {
	e := storeEngine(t, scriptedPolicy{})
	const body = "From: a@src.test\r\nX-Internal: secret\r\nSubject: original\r\n\r\nhello\r\n"
	in := &inbound.Incoming{
		Listener: "relay-in", Hostname: "relay.test", Peer: netip.MustParseAddrPort("192.0.2.9:40000"),
		Envelope: &smtpwire.Envelope{Helo: "client.test", ESMTP: true, From: smtpwire.Path{Addr: "a@src.test"}, Rcpts: []smtpwire.Path{{Addr: "b@dst.test"}}},
		Body:     []byte(body),
	}
	r := e.Accept(context.Background(), in)
	if r.Code != 250 {
		t.Fatalf("Accept: %s", r)
	}
	smtpID := strings.TrimPrefix(r.Lines[0], "OK id=")
	ids, err := e.Inject(context.Background(), []httpapi.Message{
		{From: "h@src.test", Recipients: []string{"c@dst.test"}, Body: []byte(body)},
		{From: "h@src.test", Recipients: []string{"d@dst.test"}, Body: []byte(body)},
	})
	if err != nil || len(ids) != 2 {
		t.Fatalf("Inject: %v %v", ids, err)
	}
	got := spooled(t, e)
	if len(got) != 3 {
		t.Fatalf("spool holds %d messages, want 3", len(got))
	}
	for _, c := range []struct{ id, listener, sender, with string }{
		{smtpID, "relay-in", "a@src.test", "with ESMTP"}, {ids[0], "http", "h@src.test", "with HTTP"}, {ids[1], "http", "h@src.test", "with HTTP"},
	} {
		msg := got[c.id]
		head, content, _ := strings.Cut(msg, "\n")
		if head != "scripted|from-"+c.listener+"|1" {
			t.Errorf("%s: routing %q", c.listener, head)
		}
		if !strings.HasPrefix(content, "Received: ") || !strings.Contains(content, c.with) || !strings.Contains(content, "id "+c.id) {
			t.Errorf("%s: no Received field of its own on top:\n%s", c.listener, content)
		}
		want := "X-Policy: " + c.id + "\r\nFrom: a@src.test\r\nSubject: rewritten for " + c.sender + "\r\n\r\nhello\r\n"
		if _, edited, _ := strings.Cut(content, "\r\nX-Policy: "); "X-Policy: "+edited != want {
			t.Errorf("%s: edited message\n%q\nwant\n%q", c.listener, content, want)
		}
	}
	text := scrapeText(e.metrics)
	for series, want := range map[string]string{
		`gannet_messages_received_total{listener="relay-in"}`: "1",
		`gannet_messages_received_total{listener="http"}`:     "2",
	} {
		if v := sample(text, series); v != want {
			t.Errorf("%s = %q, want %s", series, v, want)
		}
	}
	if n := e.delivery.Messages(); n != 3 {
		t.Errorf("%d messages queued, want 3", n)
	}
}

// TestStoreBatchAllOrNothing: when the policy refuses one message of an
// HTTP batch, none of the batch is kept (those already spooled are removed
// again) and the refusal is a 500, not a 503; over SMTP the same refusal
// is 451 4.3.0. Nothing is counted or queued.
func TestStoreBatchAllOrNothing(t *testing.T) {
	e := storeEngine(t, scriptedPolicy{})
	var batch []httpapi.Message
	for i := range 10 {
		body := "Subject: fine\r\n\r\nhello\r\n"
		if i == 7 {
			body = "Subject: fail\r\n\r\nhello\r\n"
		}
		batch = append(batch, httpapi.Message{From: "h@src.test", Recipients: []string{fmt.Sprintf("u%d@dst.test", i)}, Body: []byte(body)})
	}
	ids, err := e.Inject(context.Background(), batch)
	if err == nil || errors.Is(err, httpapi.ErrQueueFull) || !strings.Contains(err.Error(), "script error") {
		t.Fatalf("Inject: %v %v, want the policy's error, not queue full", ids, err)
	}
	in := &inbound.Incoming{
		Listener: "relay-in", Hostname: "relay.test", Peer: netip.MustParseAddrPort("192.0.2.9:40000"),
		Envelope: &smtpwire.Envelope{Helo: "client.test", From: smtpwire.Path{Addr: "a@src.test"}, Rcpts: []smtpwire.Path{{Addr: "b@dst.test"}}},
		Body:     []byte("Subject: fail\r\n\r\n"),
	}
	if r := e.Accept(context.Background(), in); r.Code != 451 || r.Enhanced != "4.3.0" {
		t.Errorf("Accept: %s, want 451 4.3.0", r)
	}
	if got := spooled(t, e); len(got) != 0 {
		t.Errorf("spool holds %d messages, want none", len(got))
	}
	if n := e.delivery.Messages(); n != 0 {
		t.Errorf("%d messages queued, want none", n)
	}
	if text := scrapeText(e.metrics); slices.ContainsFunc(strings.Split(text, "\n"), func(l string) bool {
		return strings.HasPrefix(l, "gannet_messages_received_total{") && !strings.HasSuffix(l, " 0")
	}) {
		t.Errorf("refused messages counted as received:\n%s", text)
	}
}
