package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gannet/engine/mimebuild"
	"gannet/msgheader"
)

// kumoRequest is the body of POST /api/inject/v1, KumoMTA's InjectV1Request.
// Unknown fields (deferred_spool, deferred_generation, trace_headers, …)
// are ignored as KumoMTA's own parser does; generation is always immediate
// and spooling always durable. tenant and campaign are Gannet extensions.
type kumoRequest struct {
	EnvelopeSender  string          `json:"envelope_sender"`
	Recipients      []kumoRecipient `json:"recipients"`
	Content         json.RawMessage `json:"content"`
	Substitutions   map[string]any  `json:"substitutions"`
	TemplateDialect string          `json:"template_dialect"` // "" or "Jinja": {{ var }}; "Static": none
	Tenant          string          `json:"tenant"`
	Campaign        string          `json:"campaign"`
}

type kumoRecipient struct {
	Email         string         `json:"email"`
	Name          *string        `json:"name"`
	Substitutions map[string]any `json:"substitutions"`
}

// kumoBuilder is the object form of "content".
type kumoBuilder struct {
	TextBody    *string           `json:"text_body"`
	HTMLBody    *string           `json:"html_body"`
	AMPHTMLBody *string           `json:"amp_html_body"`
	Attachments []kumoAttachment  `json:"attachments"`
	Headers     map[string]string `json:"headers"`
	From        *kumoAddress      `json:"from"`
	Subject     *string           `json:"subject"`
	ReplyTo     *kumoAddress      `json:"reply_to"`
}

type kumoAddress struct {
	Email string  `json:"email"`
	Name  *string `json:"name"`
}

type kumoAttachment struct {
	Data        string  `json:"data"`
	ContentType string  `json:"content_type"`
	ContentID   *string `json:"content_id"`
	FileName    *string `json:"file_name"`
	Base64      bool    `json:"base64"`
}

// kumoAnswer is KumoMTA's InjectV1Response; Error is set (and the status is
// not 200) only when nothing was injected.
type kumoAnswer struct {
	SuccessCount     int      `json:"success_count"`
	FailCount        int      `json:"fail_count"`
	FailedRecipients []string `json:"failed_recipients"`
	Errors           []string `json:"errors"`
	Error            string   `json:"error,omitempty"`
}

// kumoJob is a compiled request: what is shared by every recipient.
type kumoJob struct {
	raw *template // content as a string; nil for the builder

	// Raw content: header fields to add when the template lacks them.
	addMessageID, addDate bool

	// Builder content.
	text, html, subject *template
	headerNames         []string
	headers             []*template
	from                mimebuild.Address
	replyTo             []mimebuild.Address
	attachments         []mimebuild.Attachment
	// fromName and replyToName are the display names of From and Reply-To
	// as templates (KumoMTA expands them per recipient like any header);
	// nil when the request gave no name or the name has no placeholder.
	fromName, replyToName *template

	jinja jinjaShared // for the templates gonja renders
}

// handleInject serves POST /api/inject/v1: one message per recipient, each
// with the templates expanded for that recipient. Recipients that cannot be
// built are reported in failed_recipients/errors; the others are spooled in
// one all-or-nothing Inject call. When none can be built the answer is 422.
// Building stops at the first message over max_message_size, or when the
// messages pass max_inject_bytes together (buildBudget): the answer is 413
// and nothing is spooled.
func (s *Server) handleInject(w http.ResponseWriter, r *http.Request, c Caller, body []byte) {
	var req kumoRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := decodeAll(dec, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	tenant, aerr := bindTenant(c, req.Tenant)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	budget := s.newBudget()
	job, aerr := s.compileKumo(&req, budget)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	ans := kumoAnswer{FailedRecipients: []string{}, Errors: []string{}}
	msgs := make([]Message, 0, len(req.Recipients))
	var buf []byte
	for i := range req.Recipients {
		rc := &req.Recipients[i]
		if s.opts.Suppressed != nil {
			if reply, ok := s.opts.Suppressed(tenant, req.EnvelopeSender, rc.Email); ok {
				ans.FailCount++
				ans.FailedRecipients = append(ans.FailedRecipients, rc.Email)
				ans.Errors = append(ans.Errors, rc.Email+": "+reply)
				continue
			}
		}
		var raw []byte
		var err error
		raw, buf, err = s.expandKumo(job, &req, rc, buf, budget)
		if errors.Is(err, mimebuild.ErrTooLarge) {
			// All or nothing: what was built so far is dropped unspooled.
			writeAPIError(w, budget.tooLarge("the message for "+rc.Email))
			return
		}
		if errors.Is(err, errTemplateLimit) {
			// The same template would do as much for every recipient.
			writeAPIError(w, unprocessable("content: %v", err))
			return
		}
		if err != nil {
			ans.FailCount++
			ans.FailedRecipients = append(ans.FailedRecipients, rc.Email)
			ans.Errors = append(ans.Errors, rc.Email+": "+err.Error())
			continue
		}
		msgs = append(msgs, Message{
			From: req.EnvelopeSender, Recipients: []string{rc.Email}, Body: raw,
			Tenant: tenant, Campaign: req.Campaign,
		})
	}
	if len(msgs) == 0 {
		ans.Error = "no message could be built: " + strings.Join(ans.Errors, "; ")
		WriteJSON(w, http.StatusUnprocessableEntity, ans)
		return
	}
	if _, aerr := s.inject(r, msgs); aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	ans.SuccessCount = len(msgs)
	WriteJSON(w, http.StatusOK, ans)
}

// compileKumo checks what is common to all recipients and compiles the
// templates once. Problems here refuse the whole request with 422 (413 when
// the attachments alone make a message too large).
func (s *Server) compileKumo(req *kumoRequest, budget *buildBudget) (*kumoJob, *apiError) {
	if req.EnvelopeSender == "" {
		return nil, unprocessable("envelope_sender is required")
	}
	if err := mimebuild.CheckAddress(req.EnvelopeSender); err != nil {
		return nil, unprocessable("envelope_sender: %v", err)
	}
	if len(req.Recipients) == 0 {
		return nil, unprocessable("recipients: at least one is required")
	}
	if len(req.Recipients) > s.opts.MaxRecipients {
		return nil, unprocessable("too many recipients: %d, at most %d", len(req.Recipients), s.opts.MaxRecipients)
	}
	var compile func(src string, headerEnd int) (*template, error)
	switch req.TemplateDialect {
	case "", "Jinja":
		compile = compileTemplate
	case "Static":
		compile = func(src string, _ int) (*template, error) { return staticTemplate(src), nil }
	default:
		return nil, unprocessable("template_dialect %s is not supported (Jinja or Static)", quote(req.TemplateDialect))
	}
	content := bytes.TrimSpace(req.Content)
	switch {
	case len(content) == 0 || string(content) == "null":
		return nil, unprocessable("content is required")
	case content[0] == '"':
		var raw string
		if err := json.Unmarshal(content, &raw); err != nil {
			return nil, fail(http.StatusBadRequest, "bad JSON: content: "+err.Error())
		}
		return compileRaw(raw, compile)
	case content[0] == '{':
		var b kumoBuilder
		dec := json.NewDecoder(bytes.NewReader(content))
		if err := dec.Decode(&b); err != nil {
			return nil, fail(http.StatusBadRequest, "bad JSON: content: "+err.Error())
		}
		return compileBuilder(&b, req.EnvelopeSender, compile, budget)
	default:
		return nil, unprocessable("content must be a string (a whole message) or an object (a message to build)")
	}
}

// compileRaw prepares a whole-message template. Its header section (up to
// the first empty line) must consist of header fields; placeholders there
// may not expand to CR or LF. Line endings become CRLF after expansion.
func compileRaw(src string, compile func(string, int) (*template, error)) (*kumoJob, *apiError) {
	src = toLF(src)
	msg := []byte(src)
	job := &kumoJob{addMessageID: true, addDate: true}
	sc := msgheader.NewScanner(msg)
	for sc.Next() {
		f := sc.Field()
		line := 1 + strings.Count(src[:f.Start], "\n")
		if jinjaLine(f.Raw) {
			continue // a statement or comment: what it renders is checked then
		}
		if f.Name == nil {
			if f.Start == 0 && (src[0] == ' ' || src[0] == '\t') {
				return nil, unprocessable("content: the message starts with a continuation line")
			}
			if !strings.Contains(string(f.Raw), ":") {
				return nil, unprocessable("content: line %d is not a header field (want \"Name: value\" lines, an empty line, then the body)", line)
			}
		}
		name, _, _ := strings.Cut(string(f.Raw), ":")
		if strings.Contains(name, "{{") {
			continue // a templated name is checked by nothing but the reader
		}
		if err := mimebuild.CheckHeaderName(strings.TrimRight(name, " \t")); err != nil {
			return nil, unprocessable("content: line %d: %v", line, err)
		}
		switch {
		case f.Is("message-id"):
			job.addMessageID = false
		case f.Is("date"):
			job.addDate = false
		}
	}
	headerEnd := sc.SectionEnd()
	t, err := compile(src, headerEnd)
	if err != nil {
		return nil, unprocessable("content: %v", err)
	}
	job.raw = t
	return job, nil
}

// jinjaLine reports whether a header-section line holds a Jinja statement
// or comment ("{% if x %}", "{# … #}"): it need not look like a field.
func jinjaLine(raw []byte) bool {
	return bytes.Contains(raw, []byte("{%")) || bytes.Contains(raw, []byte("{#"))
}

// toLF turns CRLF and bare CR into LF.
func toLF(s string) string {
	if !strings.ContainsRune(s, '\r') {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// compileBuilder prepares a message to build. From defaults to the
// envelope sender; the recipient becomes To. Subject, text_body, html_body,
// the display names of from and reply_to, and header values are templates;
// addresses and attachments are not.
func compileBuilder(b *kumoBuilder, sender string, compile func(string, int) (*template, error), budget *buildBudget) (*kumoJob, *apiError) {
	if b.TextBody == nil && b.HTMLBody == nil {
		return nil, unprocessable("content: at least one of text_body and html_body is required")
	}
	if b.AMPHTMLBody != nil {
		return nil, unprocessable("content: amp_html_body is not supported")
	}
	job := &kumoJob{from: mimebuild.Address{Email: sender}}
	var err error
	if b.From != nil {
		if job.from, err = kumoMailbox(b.From); err != nil {
			return nil, unprocessable("content.from: %v", err)
		}
	}
	if b.ReplyTo != nil {
		a, err := kumoMailbox(b.ReplyTo)
		if err != nil {
			return nil, unprocessable("content.reply_to: %v", err)
		}
		job.replyTo = []mimebuild.Address{a}
	}
	for _, f := range []struct {
		field string
		addr  *kumoAddress
		dst   **template
	}{{"from", b.From, &job.fromName}, {"reply_to", b.ReplyTo, &job.replyToName}} {
		if f.addr == nil || f.addr.Name == nil {
			continue
		}
		t, err := compile(*f.addr.Name, -1)
		if err != nil {
			return nil, unprocessable("content.%s.name: %v", f.field, err)
		}
		if !t.static {
			*f.dst = t
		}
	}
	for _, f := range []struct {
		name string
		src  *string
		dst  **template
	}{{"text_body", b.TextBody, &job.text}, {"html_body", b.HTMLBody, &job.html}, {"subject", b.Subject, &job.subject}} {
		if f.src == nil {
			continue
		}
		if f.name == "subject" && mimebuild.HasCRLF(*f.src) {
			return nil, unprocessable("content.subject: CR or LF is not allowed (header injection)")
		}
		if *f.dst, err = compile(*f.src, -1); err != nil {
			return nil, unprocessable("content.%s: %v", f.name, err)
		}
	}
	job.headerNames = sortedKeys(b.Headers)
	for _, name := range job.headerNames {
		if aerr := checkCustomHeader(name, b.Headers[name]); aerr != nil {
			return nil, aerr
		}
		t, err := compile(b.Headers[name], -1)
		if err != nil {
			return nil, unprocessable("content.headers.%s: %v", name, err)
		}
		job.headers = append(job.headers, t)
	}
	for i, a := range b.Attachments {
		data := []byte(a.Data)
		if a.Base64 {
			if data, err = decodeBase64(a.Data); err != nil {
				return nil, unprocessable("content.attachments[%d].data: not base64: %v", i, err)
			}
		}
		att := mimebuild.Attachment{ContentType: a.ContentType, Data: data}
		if a.FileName != nil {
			att.Filename = *a.FileName
		}
		if a.ContentID != nil {
			att.ContentID = *a.ContentID
		}
		job.attachments = append(job.attachments, att)
	}
	// Build once with placeholder values so that attachment, From and
	// header problems are request errors, not one error per recipient.
	probe := &mimebuild.Message{From: job.from, ReplyTo: job.replyTo, Attachments: job.attachments,
		To: []mimebuild.Address{{Email: sender}}}
	for _, name := range job.headerNames {
		if !liftable(name) {
			probe.Headers = append(probe.Headers, mimebuild.Header{Name: name, Value: "x"})
		}
	}
	if _, err := mimebuild.BuildLimited(probe, zeroRand{}, budget.limit()); errors.Is(err, mimebuild.ErrTooLarge) {
		return nil, budget.tooLarge("a message with these attachments")
	} else if err != nil {
		return nil, unprocessable("content: %v", err)
	}
	return job, nil
}

// zeroRand is the boundary source of the probe build (its output is unused).
type zeroRand struct{}

func (zeroRand) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func kumoMailbox(a *kumoAddress) (mimebuild.Address, error) {
	if err := mimebuild.CheckAddress(a.Email); err != nil {
		return mimebuild.Address{}, err
	}
	out := mimebuild.Address{Email: a.Email}
	if a.Name != nil {
		if mimebuild.HasCRLF(*a.Name) {
			return out, fmt.Errorf("name: %w", mimebuild.ErrHeaderInjection)
		}
		out.Name = *a.Name
	}
	return out, nil
}

// expandKumo builds the message of one recipient, of at most
// budget.limit() bytes (mimebuild.ErrTooLarge past it, found before the
// message is built in full), and spends from budget what it built: the
// message, or what was rendered before another error. buf is scratch space
// reused between recipients; the returned message is a fresh slice.
func (s *Server) expandKumo(job *kumoJob, req *kumoRequest, rc *kumoRecipient, buf []byte, budget *buildBudget) (msg, scratch []byte, err error) {
	if err := mimebuild.CheckAddress(rc.Email); err != nil {
		return nil, buf, err
	}
	if rc.Name != nil && mimebuild.HasCRLF(*rc.Name) {
		return nil, buf, fmt.Errorf("name: %w", mimebuild.ErrHeaderInjection)
	}
	limit := budget.limit()
	used := 0 // bytes rendered for this recipient
	defer func() {
		switch {
		case err == nil:
			budget.spend(len(msg))
		case !errors.Is(err, mimebuild.ErrTooLarge): // that one ends the request
			budget.spend(used)
		}
	}()
	v := &vars{recipient: rc.Substitutions, email: rc.Email, name: rc.Name, global: req.Substitutions, shared: &job.jinja}
	if job.raw != nil {
		buf = buf[:0]
		if job.addDate {
			buf = append(buf, "Date: "...)
			buf = s.opts.Now().AppendFormat(buf, "Mon, 02 Jan 2006 15:04:05 -0700")
			buf = append(buf, '\n')
		}
		if job.addMessageID {
			buf = append(buf, "Message-ID: <"...)
			buf = append(buf, s.newMessageID()...)
			buf = append(buf, ">\n"...)
		}
		buf, err = job.raw.render(buf, v, false, limit)
		used = len(buf)
		if err != nil {
			return nil, buf, err
		}
		// CRLF line endings make the message longer by one byte a line.
		msg = appendCRLF(make([]byte, 0, len(buf)+len(buf)/16+2), buf)
		if len(msg) > limit {
			return nil, buf, mimebuild.ErrTooLarge
		}
		return msg, buf, nil
	}
	m := &mimebuild.Message{
		From:      job.from,
		ReplyTo:   job.replyTo,
		To:        []mimebuild.Address{{Email: rc.Email}},
		Date:      s.opts.Now(),
		MessageID: s.newMessageID(),
		// The attachments slice is shared read-only by every recipient.
		Attachments: job.attachments,
	}
	if rc.Name != nil {
		m.To[0].Name = *rc.Name
	}
	// The rendered parts together may take the message's limit: each is
	// at most as long in the built message.
	render := func(t *template, escape bool) (string, error) {
		if t == nil {
			return "", nil
		}
		out, err := t.render(buf[:0], v, escape, limit-used)
		buf = out
		used += len(out)
		return string(out), err
	}
	if m.Subject, err = render(job.subject, false); err != nil {
		return nil, buf, err
	}
	if job.fromName != nil {
		if m.From.Name, err = render(job.fromName, false); err != nil {
			return nil, buf, err
		}
		if mimebuild.HasCRLF(m.From.Name) {
			return nil, buf, fmt.Errorf("%w: from name", errHeaderValue)
		}
	}
	if job.replyToName != nil {
		// job.replyTo is shared by every recipient: give this one its own.
		m.ReplyTo = []mimebuild.Address{job.replyTo[0]}
		if m.ReplyTo[0].Name, err = render(job.replyToName, false); err != nil {
			return nil, buf, err
		}
		if mimebuild.HasCRLF(m.ReplyTo[0].Name) {
			return nil, buf, fmt.Errorf("%w: reply_to name", errHeaderValue)
		}
	}
	if m.Text, err = render(job.text, false); err != nil {
		return nil, buf, err
	}
	if m.HTML, err = render(job.html, true); err != nil {
		return nil, buf, err
	}
	for i, name := range job.headerNames {
		value, err := render(job.headers[i], false)
		if err != nil {
			return nil, buf, err
		}
		if mimebuild.HasCRLF(value) {
			return nil, buf, fmt.Errorf("%w: header %s", errHeaderValue, name)
		}
		if err := applyHeader(m, name, value); err != nil {
			return nil, buf, fmt.Errorf("header %s: %w", name, err)
		}
	}
	raw, err := mimebuild.BuildLimited(m, nil, limit)
	return raw, buf, err
}

// appendCRLF appends src with every line ending made CRLF (KumoMTA does the
// same, so that no bare LF reaches SMTP) and a final CRLF.
func appendCRLF(dst, src []byte) []byte {
	for {
		i := bytes.IndexAny(src, "\r\n")
		if i < 0 {
			dst = append(dst, src...)
			break
		}
		dst = append(dst, src[:i]...)
		dst = append(dst, '\r', '\n')
		if src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n' {
			i++
		}
		src = src[i+1:]
	}
	if !bytes.HasSuffix(dst, []byte("\r\n")) {
		dst = append(dst, '\r', '\n')
	}
	return dst
}
