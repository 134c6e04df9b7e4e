package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

// kumo100 is an inject request for n recipients with per-recipient and
// global substitutions and a builder content.
func kumo100(t testing.TB, n int) []byte {
	rcpts := make([]map[string]any, n)
	for i := range rcpts {
		rcpts[i] = map[string]any{
			"email":         fmt.Sprintf("user%03d@example.test", i),
			"name":          fmt.Sprintf("User %d", i),
			"substitutions": map[string]any{"code": fmt.Sprintf("C-%03d", i), "tag": "<vip>"},
		}
	}
	return mustJSON(t, map[string]any{
		"envelope_sender": "bounces@example.test",
		"recipients":      rcpts,
		"substitutions":   map[string]any{"campaign": "Summer & Sale", "year": 2026},
		"content": map[string]any{
			"from":      map[string]any{"email": "news@example.test", "name": "News Desk"},
			"reply_to":  map[string]any{"email": "help@example.test"},
			"subject":   "{{ campaign }} {{ year }} for {{ name }}",
			"text_body": "Hello {{ name }}, your code is {{ code }} {{ tag }}.\n",
			"html_body": "<p>Hello {{ name }}, code <b>{{ code }}</b> {{ tag }} {{ campaign }}</p>",
			"headers":   map[string]string{"X-Code": "{{ code }}"},
			"attachments": []map[string]any{
				{"data": "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64": true,
					"content_type": "image/gif", "file_name": "pixel.gif"},
			},
		},
	})
}

func TestKumoInject100Recipients(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	a := curl(t, "127.0.0.9", "POST", base+"/api/inject/v1", kumo100(t, 100), map[string]string{"Authorization": "Bearer acme-key"})
	if a.status != 200 || a.json["success_count"] != float64(100) || a.json["fail_count"] != float64(0) {
		t.Fatalf("answer %s", a)
	}
	if string(mustJSON(t, a.json["failed_recipients"])) != "[]" || string(mustJSON(t, a.json["errors"])) != "[]" {
		t.Errorf("lists must be empty arrays: %s", a.body)
	}
	msgs := inj.messages()
	if len(msgs) != 100 || inj.calls != 1 {
		t.Fatalf("%d messages in %d calls", len(msgs), inj.calls)
	}
	mids := map[string]bool{}
	for i, m := range msgs {
		email := fmt.Sprintf("user%03d@example.test", i)
		if m.From != "bounces@example.test" || len(m.Recipients) != 1 || m.Recipients[0] != email || m.Tenant != "acme" {
			t.Fatalf("message %d envelope %q %q %q", i, m.From, m.Recipients, m.Tenant)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		h := msg.Header
		subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
		if subj != fmt.Sprintf("Summer & Sale 2026 for User %d", i) {
			t.Errorf("%d: subject %q", i, subj)
		}
		if h.Get("To") != fmt.Sprintf("User %d <%s>", i, email) || h.Get("From") != "News Desk <news@example.test>" ||
			h.Get("Reply-To") != "help@example.test" || h.Get("X-Code") != fmt.Sprintf("C-%03d", i) {
			t.Errorf("%d: To %q From %q Reply-To %q X-Code %q", i, h.Get("To"), h.Get("From"), h.Get("Reply-To"), h.Get("X-Code"))
		}
		mids[h.Get("Message-ID")] = true
		text, html := alternativeParts(t, msg)
		if want := fmt.Sprintf("Hello User %d, your code is C-%03d <vip>.\r\n", i, i); text != want {
			t.Errorf("%d: text %q want %q", i, text, want)
		}
		if want := fmt.Sprintf("<p>Hello User %d, code <b>C-%03d</b> &lt;vip&gt; Summer &amp; Sale</p>", i, i); html != want {
			t.Errorf("%d: html %q want %q", i, html, want)
		}
		if i == 0 {
			pythonCheck(t, m.Body)
		}
	}
	if len(mids) != 100 {
		t.Errorf("%d distinct Message-IDs", len(mids))
	}
}

// alternativeParts returns the decoded text and HTML of a
// multipart/mixed(multipart/alternative(text,html),…) message.
func alternativeParts(t *testing.T, msg *mail.Message) (text, html string) {
	t.Helper()
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mixed := multipart.NewReader(msg.Body, params["boundary"])
	alt, err := mixed.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ = mime.ParseMediaType(alt.Header.Get("Content-Type"))
	ar := multipart.NewReader(alt, params["boundary"])
	var out []string
	for range 2 {
		p, err := ar.NextRawPart()
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			r = quotedprintable.NewReader(p)
		}
		b, _ := io.ReadAll(r)
		out = append(out, string(b))
	}
	return out[0], out[1]
}

func TestKumoRawContent(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body := mustJSON(t, map[string]any{
		"envelope_sender": "noreply@example.test",
		"content":         "From: noreply@example.test\nTo: \"{{ name }}\" <{{ email }}>\nSubject: hello\n\nHello {{ name }}!\n{{ missing }}end",
		"recipients":      []map[string]any{{"email": "recipient@example.test", "name": "John Smith"}},
	})
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/api/inject/v1", body, nil)
	if a.status != 200 || a.json["success_count"] != float64(1) {
		t.Fatalf("answer %s", a)
	}
	got := string(inj.messages()[0].Body)
	want := "Date: Wed, 06 May 2026 07:08:09 +0000\r\nMessage-ID: <mid1@relay.example.test>\r\n" +
		"From: noreply@example.test\r\nTo: \"John Smith\" <recipient@example.test>\r\nSubject: hello\r\n\r\nHello John Smith!\r\nend\r\n"
	if got != want {
		t.Errorf("body\n%q\nwant\n%q", got, want)
	}
}

// Recipients that cannot be built are reported; the others are spooled.
func TestKumoPartialFailure(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body := mustJSON(t, map[string]any{
		"envelope_sender": "noreply@example.test",
		"content":         "Subject: {{ s }}\n\nbody",
		"recipients": []map[string]any{
			{"email": "ok@example.test", "substitutions": map[string]any{"s": "fine"}},
			{"email": "not an address"},
			{"email": "evil@example.test", "substitutions": map[string]any{"s": "x\r\nBcc: victim@example.test"}},
			{"email": "ok2@example.test", "name": "Eve\nBcc: x@example.test"},
		},
	})
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/api/inject/v1", body, nil)
	if a.status != 200 || a.json["success_count"] != float64(1) || a.json["fail_count"] != float64(3) {
		t.Fatalf("answer %s", a)
	}
	failed := fmt.Sprint(a.json["failed_recipients"])
	if failed != "[not an address evil@example.test ok2@example.test]" {
		t.Errorf("failed %s", failed)
	}
	if errs, _ := a.json["errors"].([]any); len(errs) != 3 || !strings.HasPrefix(errs[0].(string), "not an address: ") {
		t.Errorf("errors %v", a.json["errors"])
	}
	msgs := inj.messages()
	if len(msgs) != 1 || msgs[0].Recipients[0] != "ok@example.test" || bytes.Contains(msgs[0].Body, []byte("victim")) {
		t.Fatalf("messages %v", msgs)
	}
}

func TestKumoStaticDialect(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body := []byte(`{"envelope_sender":"a@example.test","template_dialect":"Static",
		"content":{"text_body":"{% raw %} {{ name }}","subject":"S"},"recipients":[{"email":"b@example.test","name":"N"}]}`)
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/api/inject/v1", body, nil)
	if a.status != 200 {
		t.Fatalf("answer %s", a)
	}
	if b := inj.messages()[0].Body; !bytes.Contains(b, []byte("{% raw %} {{ name }}")) {
		t.Errorf("static content was expanded:\n%s", b)
	}
}

// The display names of from and reply_to are templates, expanded per
// recipient like the subject and the header values (KumoMTA does the same);
// a substitution that would put CR or LF into them fails that recipient.
func TestKumoBuilderTemplatedNames(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body := mustJSON(t, map[string]any{
		"envelope_sender": "bounces@example.test",
		"substitutions":   map[string]any{"brand": "Acme News"},
		"content": map[string]any{
			"from":      map[string]any{"email": "news@example.test", "name": "{{ brand }} for {{ name }}"},
			"reply_to":  map[string]any{"email": "help@example.test", "name": "{{ desk }} Desk"},
			"subject":   "S",
			"text_body": "T",
			"headers":   map[string]string{"X-Greeting": "Hi {{ name }} ({{ desk }})"},
		},
		"recipients": []map[string]any{
			{"email": "a@example.test", "name": "Ann", "substitutions": map[string]any{"desk": "Sales"}},
			{"email": "b@example.test", "name": "Bob", "substitutions": map[string]any{"desk": "Support"}},
			{"email": "c@example.test", "substitutions": map[string]any{"brand": "x\r\nBcc: victim@example.test"}},
			{"email": "d@example.test", "substitutions": map[string]any{"desk": "y\nBcc: victim@example.test"}},
		},
	})
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/api/inject/v1", body, nil)
	if a.status != 200 || a.json["success_count"] != float64(2) || a.json["fail_count"] != float64(2) {
		t.Fatalf("answer %s", a)
	}
	if failed := fmt.Sprint(a.json["failed_recipients"]); failed != "[c@example.test d@example.test]" {
		t.Errorf("failed %s", failed)
	}
	msgs := inj.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, want := range []struct{ from, replyTo, greeting string }{
		{"Acme News for Ann <news@example.test>", "Sales Desk <help@example.test>", "Hi Ann (Sales)"},
		{"Acme News for Bob <news@example.test>", "Support Desk <help@example.test>", "Hi Bob (Support)"},
	} {
		if bytes.Contains(msgs[i].Body, []byte("victim")) {
			t.Errorf("message %d carries an injected header", i)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(msgs[i].Body))
		if err != nil {
			t.Fatal(err)
		}
		h := msg.Header
		if h.Get("From") != want.from || h.Get("Reply-To") != want.replyTo || h.Get("X-Greeting") != want.greeting {
			t.Errorf("message %d: From %q Reply-To %q X-Greeting %q, want %q %q %q", i,
				h.Get("From"), h.Get("Reply-To"), h.Get("X-Greeting"), want.from, want.replyTo, want.greeting)
		}
	}
}
