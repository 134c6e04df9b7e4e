package admin

import (
	"net/http"
	"slices"
	"strings"

	"gannet/mailaddr"
	"gannet/msgheader"
	"gannet/queue"
	"gannet/smtpwire"
)

// inspectMessage: GET /api/admin/inspect-message/v1?id=ID[&want_body=true].
// A message the spool quarantined is answered from its quarantine record
// (inspectCorrupt), before the loop is asked.
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
	if h.opts.Quarantine != nil {
		qc, ok, err := h.opts.Quarantine.Quarantined(id)
		if err != nil {
			h.log.Error("admin inspect: reading the spool's quarantine", "id", id, "err", err)
			return fail(http.StatusInternalServerError, "cannot read the spool's quarantine")
		}
		if ok {
			return h.inspectCorrupt(w, qc, c)
		}
	}
	info, ok := h.opts.Loop.Inspect(r.Context(), id)
	if !ok && h.opts.Dead != nil {
		if m, err := h.opts.Dead.DeadLetter(id); err == nil && c.owns(m.Tenant) {
			return fail(http.StatusNotFound, "message %q is not queued: it is a dead letter (gannet dead show %s)", id, id)
		}
	}
	if !ok || !c.owns(info.Message.Tenant) {
		// Another tenant's message is as unknown as a delivered one.
		return fail(http.StatusNotFound, "no queued message with id %q", id)
	}
	m := &info.Message
	out := InspectMessageV1{ID: m.ID, State: StateQueued, Message: messageInformation(m)}
	if !m.NextDue.IsZero() {
		t := m.NextDue
		out.Message.Due = &t
	}
	for i := range out.Message.Recipients {
		ri := &out.Message.Recipients[i]
		if m.Recipients[i].State != queue.Pending {
			continue
		}
		ri.Site = info.Sites[ri.Domain]
		if t, ok := info.Due[ri.Domain]; ok {
			t := t
			ri.NextDue = &t
		}
		ri.Held = slices.Contains(info.Held, ri.Domain)
		ri.InFlight = slices.Contains(info.InFlight, ri.Domain)
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

// inspectCorrupt answers inspect for a quarantined message: state
// "corrupt", why, and the envelope when the spool kept it (a corrupt body
// record); never a body, which is lost. A tenant's key sees only its own
// message, and never one whose index entry is unreadable (its tenant is
// not known).
func (h *handler) inspectCorrupt(w http.ResponseWriter, qc queue.Corruption, c caller) *apiError {
	if c.tenant != "" && (qc.Message == nil || !c.owns(qc.Message.Tenant)) {
		return fail(http.StatusNotFound, "no queued message with id %q", qc.ID)
	}
	out := InspectMessageV1{ID: qc.ID, State: StateCorrupt, Corrupt: &CorruptInfo{
		Kind: qc.Kind.String(), Reason: qc.Reason, RawSize: qc.Size, Quarantined: qc.At}}
	if qc.Message != nil {
		out.Message = messageInformation(qc.Message)
	} else {
		out.Message = messageInformation(&queue.Message{ID: qc.ID})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// messageInformation is what the index says of m: its envelope and each
// recipient's state (where a pending one is routed is the caller's to add).
func messageInformation(m *queue.Message) MessageInformation {
	mi := MessageInformation{
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
		Ret:         smtpwire.DSNRet(m.DSNRet).String(),
		EnvID:       m.EnvID,
	}
	for _, rc := range m.Recipients {
		mi.Recipient = append(mi.Recipient, rc.Addr)
		mi.Recipients = append(mi.Recipients, RecipientInfo{Email: rc.Addr, State: rc.State.String(),
			Attempts: rc.Attempts, LastReply: rc.LastReply, Domain: mailaddr.Domain(rc.Addr),
			Notify: smtpwire.DSNNotify(rc.Notify).String(), ORcpt: rc.ORcpt, DelayDSNSent: rc.DelayWarned})
	}
	return mi
}

// headerSection returns the header section of a message, up to and
// including the empty line that ends it (RFC 5322 §2.1), or all of it; nil
// when the message has no header field.
func headerSection(msg []byte) []byte {
	if msgheader.SectionEnd(msg) == 0 {
		return nil
	}
	return msgheader.Section(msg)
}
