package admin

import (
	"bytes"
	"net/http"
	"slices"
	"strings"

	"gannet/mailaddr"
	"gannet/queue"
)

// inspectMessage: GET /api/admin/inspect-message/v1?id=ID[&want_body=true].
func (h *handler) inspectMessage(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	q := r.URL.Query()
	id := strings.TrimSpace(q.Get("id"))
	if id == "" {
		return fail(http.StatusUnprocessableEntity, "the id query parameter is required")
	}
	wantBody := false
	switch strings.ToLower(q.Get("want_body")) {
	case "", "false", "0", "no":
	case "true", "1", "yes":
		wantBody = true
	default:
		return fail(http.StatusUnprocessableEntity, "want_body: want true or false")
	}
	info, ok := h.opts.Loop.Inspect(r.Context(), id)
	if !ok || !c.owns(info.Message.Tenant) {
		// Another tenant's message is as unknown as a delivered one.
		return fail(http.StatusNotFound, "no queued message with id %q", id)
	}
	m := &info.Message
	out := InspectMessageV1{ID: m.ID, Message: MessageInformation{
		Sender:      m.From,
		Recipient:   make([]string, 0, len(m.Recipients)),
		Recipients:  make([]RecipientInfo, 0, len(m.Recipients)),
		NumAttempts: m.Attempts,
		Created:     m.Created,
		Size:        m.Size,
		Tenant:      m.Tenant,
		Campaign:    m.Campaign,
		Priority:    m.Priority,
		Meta:        map[string]any{"tenant": m.Tenant, "campaign": m.Campaign, "priority": m.Priority},
	}}
	if !m.NextDue.IsZero() {
		t := m.NextDue
		out.Message.Due = &t
	}
	for _, rc := range m.Recipients {
		d := mailaddr.Domain(rc.Addr)
		ri := RecipientInfo{Email: rc.Addr, State: rc.State.String(), Attempts: rc.Attempts, LastReply: rc.LastReply, Domain: d}
		if rc.State == queue.Pending {
			ri.Site = info.Sites[d]
			if t, ok := info.Due[d]; ok {
				t := t
				ri.NextDue = &t
			}
			ri.Held = slices.Contains(info.Held, d)
			ri.InFlight = slices.Contains(info.InFlight, d)
		}
		out.Message.Recipient = append(out.Message.Recipient, rc.Addr)
		out.Message.Recipients = append(out.Message.Recipients, ri)
	}
	if wantBody {
		if h.opts.Spool == nil {
			return fail(http.StatusNotImplemented, "message bodies are not available")
		}
		body, err := h.opts.Spool.Body(m)
		if err != nil {
			h.log.Error("admin inspect: reading the body", "id", m.ID, "err", err)
			return fail(http.StatusInternalServerError, "cannot read the message from the spool")
		}
		data := string(body)
		hdr := string(headerSection(body))
		out.Message.Data, out.Message.Headers = &data, &hdr
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// headerSection returns the header section of a message, up to and
// including the empty line that ends it (RFC 5322 §2.1), or all of it.
func headerSection(msg []byte) []byte {
	if bytes.HasPrefix(msg, []byte("\r\n")) || bytes.HasPrefix(msg, []byte("\n")) {
		return nil
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+4]
	}
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+2]
	}
	return msg
}
