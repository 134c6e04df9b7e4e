package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"gannet/engine/mimebuild"
)

// messageRequest is the body of POST /v1/message (contract.md, "HTTP").
type messageRequest struct {
	From        string            `json:"from"`
	To          addrList          `json:"to"`
	Cc          addrList          `json:"cc"`
	Bcc         addrList          `json:"bcc"`
	Subject     string            `json:"subject"`
	Headers     map[string]string `json:"headers"`
	Text        string            `json:"text"`
	HTML        string            `json:"html"`
	Attachments []attachmentJSON  `json:"attachments"`
	Tenant      string            `json:"tenant"`
	Campaign    string            `json:"campaign"`
}

type attachmentJSON struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Content     string `json:"content"`    // base64
	ContentID   string `json:"content_id"` // optional: an inline part
}

// addrList is a list of addresses; a single string is taken as a list of one.
type addrList []string

func (l *addrList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = addrList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*l = list
	return nil
}

// messageAnswer is the 202 answer of POST /v1/message.
type messageAnswer struct {
	ID         string `json:"id"`
	Recipients int    `json:"recipients"`
	// The recipients refused (suppressed) and why, "ADDRESS: REPLY";
	// left out when none was.
	FailedRecipients []string `json:"failed_recipients,omitempty"`
	Errors           []string `json:"errors,omitempty"`
}

// refusedAnswer is the 422 answer of POST /v1/message when every
// recipient was refused.
type refusedAnswer struct {
	Error            string   `json:"error"`
	FailedRecipients []string `json:"failed_recipients"`
	Errors           []string `json:"errors"`
}

// handleMessage serves POST /v1/message: one MIME message built from the
// JSON, its recipients To + Cc + Bcc (Bcc only in the envelope).
func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request, c Caller, body []byte) {
	var req messageRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := decodeAll(dec, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	msg, aerr := s.buildMessage(c, &req)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	ans := messageAnswer{}
	msg.Recipients, ans.FailedRecipients, ans.Errors = s.refuseSuppressed(msg.Tenant, msg.From, msg.Recipients)
	if len(msg.Recipients) == 0 {
		WriteJSON(w, http.StatusUnprocessableEntity, refusedAnswer{
			Error: "every recipient was refused", FailedRecipients: ans.FailedRecipients, Errors: ans.Errors})
		return
	}
	ids, aerr := s.inject(r, []Message{msg})
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	ans.ID, ans.Recipients = ids[0], len(msg.Recipients)
	WriteJSON(w, http.StatusAccepted, ans)
}

// refuseSuppressed splits rcpts into those to inject and those
// Options.Suppressed refuses, with an "ADDRESS: REPLY" error for each.
func (s *Server) refuseSuppressed(tenant, sender string, rcpts []string) (kept, failed, errs []string) {
	if s.opts.Suppressed == nil {
		return rcpts, nil, nil
	}
	kept = rcpts[:0:0]
	for _, rc := range rcpts {
		if reply, ok := s.opts.Suppressed(tenant, sender, rc); ok {
			failed = append(failed, rc)
			errs = append(errs, rc+": "+reply)
			continue
		}
		kept = append(kept, rc)
	}
	return kept, failed, errs
}

// decodeAll decodes one JSON value and refuses anything after it.
func decodeAll(dec *json.Decoder, v any) error {
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("data after the JSON object")
	}
	return nil
}

func unprocessable(format string, args ...any) *apiError {
	return fail(http.StatusUnprocessableEntity, fmt.Sprintf(format, args...))
}

// buildMessage validates req and builds the message, of at most
// max_message_size bytes (413 past it: quoted-printable text and base64
// attachments grow as they are encoded).
func (s *Server) buildMessage(c Caller, req *messageRequest) (Message, *apiError) {
	tenant, aerr := bindTenant(c, req.Tenant)
	if aerr != nil {
		return Message{}, aerr
	}
	if req.From == "" {
		return Message{}, unprocessable("from is required")
	}
	from, err := mimebuild.ParseAddress(req.From)
	if err != nil {
		return Message{}, unprocessable("from: %v", err)
	}
	m := &mimebuild.Message{
		From:      from,
		Subject:   req.Subject,
		Date:      s.opts.Now(),
		MessageID: s.newMessageID(),
		Text:      req.Text,
		HTML:      req.HTML,
	}
	var rcpts []string
	seen := make(map[string]bool)
	for _, list := range []struct {
		field string
		in    addrList
		out   *[]mimebuild.Address
	}{{"to", req.To, &m.To}, {"cc", req.Cc, &m.Cc}, {"bcc", req.Bcc, nil}} {
		for _, a := range list.in {
			addr, err := mimebuild.ParseAddress(a)
			if err != nil {
				return Message{}, unprocessable("%s: %v", list.field, err)
			}
			if list.out != nil {
				*list.out = append(*list.out, addr)
			}
			if k := addrKey(addr.Email); !seen[k] {
				seen[k] = true
				rcpts = append(rcpts, addr.Email)
			}
		}
	}
	if len(rcpts) == 0 {
		return Message{}, unprocessable("no recipients: give to, cc or bcc")
	}
	if len(rcpts) > s.opts.MaxRecipients {
		return Message{}, unprocessable("too many recipients: %d, at most %d", len(rcpts), s.opts.MaxRecipients)
	}
	if mimebuild.HasCRLF(req.Subject) {
		return Message{}, unprocessable("subject: CR or LF is not allowed (header injection)")
	}
	names := sortedKeys(req.Headers)
	for _, name := range names {
		if aerr := checkCustomHeader(name, req.Headers[name]); aerr != nil {
			return Message{}, aerr
		}
		if err := applyHeader(m, name, req.Headers[name]); err != nil {
			return Message{}, unprocessable("headers: %s: %v", name, err)
		}
	}
	for i, a := range req.Attachments {
		data, err := decodeBase64(a.Content)
		if err != nil {
			return Message{}, unprocessable("attachments[%d].content: not base64: %v", i, err)
		}
		m.Attachments = append(m.Attachments, mimebuild.Attachment{
			Filename: a.Filename, ContentType: a.ContentType, ContentID: a.ContentID, Data: data,
		})
	}
	budget := s.newBudget()
	raw, err := mimebuild.BuildLimited(m, nil, budget.limit())
	if errors.Is(err, mimebuild.ErrTooLarge) {
		return Message{}, budget.tooLarge("the message")
	}
	if err != nil {
		return Message{}, unprocessable("%v", err)
	}
	return Message{From: from.Email, Recipients: rcpts, Body: raw, Tenant: tenant, Campaign: req.Campaign}, nil
}

// addrKey identifies an address for deduplication: the domain is
// case-insensitive (RFC 5321 §2.4), the local part is not.
func addrKey(a string) string {
	at := strings.LastIndexByte(a, '@')
	return a[:at+1] + strings.ToLower(a[at+1:])
}

// checkCustomHeader validates one header of a JSON "headers" object: a valid
// field name, not a field the builder writes (except those applyHeader
// lifts), and no CR or LF in the value (header injection).
func checkCustomHeader(name, value string) *apiError {
	if err := mimebuild.CheckHeaderName(name); err != nil {
		return unprocessable("headers: %v", err)
	}
	if mimebuild.HasCRLF(value) {
		return unprocessable("headers: %s: CR or LF is not allowed (header injection)", name)
	}
	if mimebuild.IsReservedHeader(name) && !liftable(name) {
		return unprocessable("headers: %s is set by the API, not by a custom header", name)
	}
	return nil
}

// liftable names the reserved fields a "headers" object may still give:
// they become the message's own Subject, Reply-To and Message-ID.
func liftable(name string) bool {
	switch strings.ToLower(name) {
	case "subject", "reply-to", "message-id":
		return true
	}
	return false
}

// applyHeader sets one (checked) header on m: liftable fields go to their
// place — Subject only when the request had none — the others are custom.
func applyHeader(m *mimebuild.Message, name, value string) error {
	switch strings.ToLower(name) {
	case "subject":
		if m.Subject == "" {
			m.Subject = value
		}
	case "reply-to":
		list, err := parseAddressList(value)
		if err != nil {
			return err
		}
		m.ReplyTo = list
	case "message-id":
		m.MessageID = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(value), "<"), ">")
	default:
		m.Headers = append(m.Headers, mimebuild.Header{Name: name, Value: value})
	}
	return nil
}

// parseAddressList reads "a@x, B <b@y>" with net/mail's grammar.
func parseAddressList(s string) ([]mimebuild.Address, error) {
	var out []mimebuild.Address
	for _, part := range splitAddressList(s) {
		a, err := mimebuild.ParseAddress(part)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no address")
	}
	return out, nil
}

// splitAddressList splits at commas outside quotes and angle brackets.
func splitAddressList(s string) []string {
	var parts []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '<':
			depth++
		case !quoted && c == '>' && depth > 0:
			depth--
		case !quoted && depth == 0 && c == ',':
			if p := strings.TrimSpace(s[start:i]); p != "" {
				parts = append(parts, p)
			}
			start = i + 1
		}
	}
	if p := strings.TrimSpace(s[start:]); p != "" {
		parts = append(parts, p)
	}
	return parts
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decodeBase64 accepts standard base64 with or without padding; line
// breaks are ignored.
func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=\r\n"))
}

// newMessageID returns "id@hostname" for a Message-ID field.
func (s *Server) newMessageID() string { return s.opts.NewID() + "@" + s.opts.Hostname }

// inject hands msgs to the Injector and maps its errors: ErrQueueFull (the
// queue or the disk is full) → 503 with Retry-After, anything else → 500
// (a local error; the cause goes to the log, not to the client).
func (s *Server) inject(r *http.Request, msgs []Message) ([]string, *apiError) {
	ids, err := s.opts.Injector.Inject(r.Context(), msgs)
	switch {
	case errors.Is(err, ErrQueueFull):
		return nil, &apiError{status: http.StatusServiceUnavailable, msg: "queue full, try again later"}
	case err != nil:
		s.log.Error("http inject failed", "messages", len(msgs), "err", err)
		return nil, fail(http.StatusInternalServerError, "local error in processing, try again later")
	case len(ids) != len(msgs):
		s.log.Error("http inject: injector returned a wrong number of ids", "messages", len(msgs), "ids", len(ids))
		return nil, fail(http.StatusInternalServerError, "local error in processing, try again later")
	}
	return ids, nil
}
