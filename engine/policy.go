package engine

// Message policy: the routing metadata read from [meta] headers, and the
// header fields Gannet adds (Date, Message-ID, List-Unsubscribe) before a
// message is signed and spooled.

import (
	"net/url"
	"strings"
	"time"

	"gannet/engine/config"
	"gannet/msgheader"
)

// msgMeta is the routing metadata read from a message's header.
type msgMeta struct {
	tenant, campaign string
	priority         int
	// strip holds the byte ranges of the meta header fields to remove
	// (strip_meta_headers), in message order; prepare leaves them out when
	// it builds the final message, so reading them copies nothing.
	strip [][2]int
}

// stripped returns body without the ranges in m.strip, in a new slice (or
// body itself when there is nothing to strip).
func (m msgMeta) stripped(body []byte) []byte {
	if len(m.strip) == 0 {
		return body
	}
	return appendContent(nil, body, m.strip, len(body), nil)
}

// readMeta reads the [meta] headers from the message header section. Values
// count only when trusted; the headers are removed when strip_meta_headers
// is set, trusted or not, so they never leak to the recipient.
func (e *Engine) readMeta(body []byte, trusted bool) msgMeta {
	mc := e.conf().Meta
	var out msgMeta
	names := [3]string{mc.TenantHeader, mc.CampaignHeader, mc.PriorityHeader}
	for f := range msgheader.Fields(body) {
		for i, n := range names {
			if n == "" || !f.Is(n) {
				continue
			}
			v := f.Unfolded()
			if trusted {
				switch i {
				case 0:
					out.tenant = v
				case 1:
					out.campaign = v
				case 2:
					if strings.EqualFold(v, "transactional") {
						out.priority = 1
					}
				}
			}
			if mc.StripMetaHeaders {
				out.strip = append(out.strip, [2]int{f.Start, f.End()})
			}
		}
	}
	return out
}

// headerEdits are the fields a message lacks and gets from Gannet, in the
// order they are added at the end of its header section.
type headerEdits struct {
	date, messageID bool
	listUnsubscribe string // the URI, "" for none
}

// plannedEdits decides what to add to a message: Date and Message-ID when
// missing and [meta] add_missing_headers is set (RFC 5322 §3.6.1, §3.6.4:
// Date is required, Message-ID should be present); List-Unsubscribe for
// bulk mail — a campaign is set — of a tenant with list_unsubscribe, unless
// the message already has one (the sender's own wins).
func plannedEdits(c *config.Config, body []byte, tenant *config.Tenant, campaign string) headerEdits {
	return plannedEditsExcept(c, body, nil, tenant, campaign)
}

// plannedEditsExcept is plannedEdits for body without the header fields
// that start at the ranges in strip (the meta headers prepare removes).
func plannedEditsExcept(c *config.Config, body []byte, strip [][2]int, tenant *config.Tenant, campaign string) headerEdits {
	var has struct{ date, messageID, listUnsub bool }
fields:
	for f := range msgheader.Fields(body) {
		for _, r := range strip {
			if r[0] == f.Start {
				continue fields
			}
		}
		switch {
		case f.Is("Date"):
			has.date = true
		case f.Is("Message-ID"):
			has.messageID = true
		case f.Is("List-Unsubscribe"):
			has.listUnsub = true
		}
	}
	var ed headerEdits
	if c.Meta.AddMissingHeaders {
		ed.date, ed.messageID = !has.date, !has.messageID
	}
	if campaign != "" && tenant != nil && tenant.ListUnsubscribe != "" && !has.listUnsub {
		ed.listUnsubscribe = tenant.ListUnsubscribe
	}
	return ed
}

// none reports whether there is nothing to add.
func (ed headerEdits) none() bool {
	return !ed.date && !ed.messageID && ed.listUnsubscribe == ""
}

// apply returns body with the planned fields added at the end of its header
// section (before the empty line; at the end of a message that is all
// header). id is the queue id: Message-ID is "<id@host>" and "{id}" in the
// List-Unsubscribe template becomes id.
func (ed headerEdits) apply(body []byte, id, host string, now time.Time) []byte {
	if ed.none() {
		return body
	}
	at, add := ed.fields(body, nil, id, host, now)
	return appendContent(make([]byte, 0, len(body)+len(add)), body, nil, at, add)
}

// fields returns the header fields apply adds (add) and the offset in body
// where they go (at: the end of the header section), for body without the
// ranges in strip (see appendContent). add is nil when there is nothing to
// add.
func (ed headerEdits) fields(body []byte, strip [][2]int, id, host string, now time.Time) (at int, add []byte) {
	at = msgheader.SectionEnd(body)
	if ed.none() {
		return at, nil
	}
	// The last byte before at that is kept: stripped fields right before
	// at do not count.
	last := at
	for i := len(strip) - 1; i >= 0 && strip[i][1] == last; i-- {
		last = strip[i][0]
	}
	add = make([]byte, 0, 256)
	if at == len(body) && last > 0 && body[last-1] != '\n' {
		add = append(add, "\r\n"...) // the last header line had no line end
	}
	if ed.date {
		// RFC 5322 §3.3 date-time.
		add = append(add, "Date: "...)
		add = now.AppendFormat(add, "Mon, 02 Jan 2006 15:04:05 -0700")
		add = append(add, "\r\n"...)
	}
	if ed.messageID {
		// RFC 5322 §3.6.4: a unique id-left "@" id-right; the queue id is
		// unique on this host.
		add = append(add, "Message-ID: <"...)
		add = append(add, id...)
		add = append(add, '@')
		add = append(add, host...)
		add = append(add, ">\r\n"...)
	}
	if ed.listUnsubscribe != "" {
		uri := strings.ReplaceAll(ed.listUnsubscribe, "{id}", url.PathEscape(id))
		add = append(add, "List-Unsubscribe: <"...)
		add = append(add, uri...)
		add = append(add, ">\r\n"...)
		// RFC 8058 §3.1: one-click unsubscription needs an HTTPS URI; the
		// POST body a receiver sends is exactly this value.
		if strings.HasPrefix(strings.ToLower(uri), "https:") {
			add = append(add, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"...)
		}
	}
	return at, add
}

// appendContent appends body to dst without the byte ranges in strip
// (sorted, non-overlapping) and with add inserted at offset at (no strip
// range may contain at), copying each byte of body once.
func appendContent(dst, body []byte, strip [][2]int, at int, add []byte) []byte {
	prev := 0
	inserted := false
	for _, r := range strip {
		if !inserted && at <= r[0] {
			dst = append(append(dst, body[prev:at]...), add...)
			prev, inserted = at, true
		}
		dst = append(dst, body[prev:r[0]]...)
		prev = r[1]
	}
	if !inserted {
		dst = append(append(dst, body[prev:at]...), add...)
		prev = at
	}
	return append(dst, body[prev:]...)
}
