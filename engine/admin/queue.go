package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gannet/engine/delivery"
	"gannet/mailaddr"
	"gannet/queue"
)

// The queue list and its actions, and the dead letters:
//
//	GET    /api/admin/queue/v1?domain=&site=&tenant=&campaign=&sender=&recipient=&min_attempts=&older=&state=&limit=&after=&group_by=
//	POST   /api/admin/queue/v1/bounce   {"ids": […]} or filters, "reason"
//	POST   /api/admin/queue/v1/delete   {"ids": […]} or filters, "reason"
//	GET    /api/admin/dead-letters/v1?domain=&tenant=&campaign=&sender=&recipient=&since=&older=&limit=&after=&group_by=
//	GET    /api/admin/dead-letters/v1?id=ID[&body=1]
//	POST   /api/admin/dead-letters/v1   {"ids": […]} or {"domain", "tenant", "campaign", "since"}: requeue
//	DELETE /api/admin/dead-letters/v1   the same: purge
//
// A bad filter is refused with 422. A tenant's API key sees and acts on its
// tenant's mail only.

// DeadLetters is the spool's dead letters (*queue.Spool, queue/dead.go).
type DeadLetters interface {
	ScanDeadAfter(after string, fn func(*queue.Message) error) error
	DeadLetter(id string) (*queue.Message, error)
	RequeueDead(id string, now time.Time) (*queue.Message, error)
	PurgeDead(id string) error
	Body(m *queue.Message) ([]byte, error)
	Stats() queue.Stats // Dead: the count in the summary
}

// listParams are the query parameters a list takes.
var listParams = map[string]bool{"domain": true, "site": true, "tenant": true, "campaign": true, "sender": true,
	"recipient": true, "min_attempts": true, "older": true, "state": true, "limit": true, "after": true,
	"group_by": true, "since": true}

// listQuery is a parsed list request.
type listQuery struct {
	f     delivery.ListFilter
	dead  bool          // state=dead
	since time.Duration // dead letters: died at most this long ago
}

// parseList reads a list's query parameters.
func parseList(q url.Values, dead bool) (listQuery, *apiError) {
	var lq listQuery
	for k := range q {
		if !listParams[k] || k == "since" && !dead {
			return lq, fail(http.StatusUnprocessableEntity, "unknown filter %q", k)
		}
	}
	f := delivery.ListFilter{Domain: q.Get("domain"), Site: q.Get("site"), Tenant: q.Get("tenant"),
		Campaign: q.Get("campaign"), Sender: q.Get("sender"), Recipient: q.Get("recipient"),
		State: q.Get("state"), After: q.Get("after"), GroupBy: q.Get("group_by")}
	var err error
	if v := q.Get("min_attempts"); v != "" {
		if f.MinAttempts, err = strconv.Atoi(v); err != nil || f.MinAttempts < 0 {
			return lq, fail(http.StatusUnprocessableEntity, "min_attempts %q: want a whole number", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return lq, fail(http.StatusUnprocessableEntity, "limit %q: want 1 to %d", v, delivery.MaxListLimit)
		}
	}
	if v := q.Get("older"); v != "" {
		if f.Older, err = ParseDuration(v); err != nil {
			return lq, fail(http.StatusUnprocessableEntity, "older: %v", err)
		}
	}
	if v := q.Get("since"); v != "" {
		if lq.since, err = ParseDuration(v); err != nil {
			return lq, fail(http.StatusUnprocessableEntity, "since: %v", err)
		}
	}
	f = f.Normalize()
	if f.State == StateDead {
		dead, f.State = true, ""
	}
	if err := f.Validate(); err != nil {
		return lq, fail(http.StatusUnprocessableEntity, "%v", err)
	}
	if dead && f.GroupBy == "site" {
		return lq, fail(http.StatusUnprocessableEntity, "group_by site: dead letters have no site")
	}
	if dead && f.Site != "" {
		return lq, fail(http.StatusUnprocessableEntity, "site: dead letters have no site")
	}
	lq.f, lq.dead = f, dead
	return lq, nil
}

// queueList: GET /api/admin/queue/v1.
func (h *handler) queueList(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	lq, err := parseList(r.URL.Query(), false)
	if err != nil {
		return err
	}
	if lq.f.Tenant, err = c.scope(lq.f.Tenant); err != nil {
		return err
	}
	if lq.dead {
		return h.deadList(w, lq)
	}
	res := h.opts.Loop.List(r.Context(), lq.f)
	out := QueueListV1{Messages: []ListedMessage{}, Next: res.Next, Matched: res.Matched, GroupBy: lq.f.GroupBy}
	for _, m := range res.Messages {
		lm := ListedMessage{ID: m.ID, Sender: m.Sender, Tenant: m.Tenant, Campaign: m.Campaign, Created: m.Created,
			NumAttempts: m.Attempts, Size: m.Size, State: m.State, Recipients: []ListedRecipient{}}
		if !m.NextDue.IsZero() {
			due := m.NextDue
			lm.Due = &due
		}
		for _, rc := range m.Recipients {
			lm.Recipients = append(lm.Recipients, ListedRecipient{Email: rc.Addr, State: queue.Pending.String(), Attempts: rc.Attempts, LastReply: rc.LastReply})
		}
		out.Messages = append(out.Messages, lm)
	}
	for _, g := range res.Groups {
		out.Groups = append(out.Groups, GroupCount(g))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deadMatch returns the recipients of dead letter m that lq matches (those
// not delivered), none when m does not match.
func deadMatch(m *queue.Message, lq *listQuery, now time.Time) []ListedRecipient {
	f := &lq.f
	if (f.Tenant != "" && f.Tenant != m.Tenant) || (f.Campaign != "" && f.Campaign != m.Campaign) ||
		(f.Sender != "" && !strings.EqualFold(f.Sender, m.From)) || m.Attempts < f.MinAttempts ||
		(f.Older > 0 && m.Created.After(now.Add(-f.Older))) || (lq.since > 0 && m.NextDue.Before(now.Add(-lq.since))) {
		return nil
	}
	var out []ListedRecipient
	for _, rc := range m.Recipients {
		if rc.State == queue.Delivered {
			continue
		}
		if f.Domain != "" && mailaddr.Domain(rc.Addr) != f.Domain {
			continue
		}
		if f.Recipient != "" && !strings.Contains(strings.ToLower(rc.Addr), f.Recipient) {
			continue
		}
		out = append(out, ListedRecipient{Email: rc.Addr, State: rc.State.String(), Attempts: rc.Attempts, LastReply: rc.LastReply})
	}
	return out
}

// listedDead is the list form of dead letter m with recipients rs.
func listedDead(m *queue.Message, rs []ListedRecipient) ListedMessage {
	died := m.NextDue
	return ListedMessage{ID: m.ID, Sender: m.From, Tenant: m.Tenant, Campaign: m.Campaign, Created: m.Created,
		Died: &died, NumAttempts: m.Attempts, Size: m.Size, State: StateDead, Recipients: rs}
}

// deadList lists the dead letters lq matches: a prefix scan of the spool's
// index in id order.
func (h *handler) deadList(w http.ResponseWriter, lq listQuery) *apiError {
	if h.opts.Dead == nil {
		writeJSON(w, http.StatusOK, QueueListV1{Messages: []ListedMessage{}, GroupBy: lq.f.GroupBy})
		return nil
	}
	limit := lq.f.Limit
	if limit == 0 {
		limit = delivery.DefaultListLimit
	}
	now := h.opts.Now()
	out := QueueListV1{Messages: []ListedMessage{}, GroupBy: lq.f.GroupBy}
	groups := map[string]*GroupCount{}
	var order []string
	err := h.opts.Dead.ScanDeadAfter(lq.f.After, func(m *queue.Message) error {
		rs := deadMatch(m, &lq, now)
		if len(rs) == 0 {
			return nil
		}
		out.Matched++
		if lq.f.GroupBy != "" {
			seen := map[string]bool{}
			for _, rc := range rs {
				var key string
				switch lq.f.GroupBy {
				case "domain":
					key = mailaddr.Domain(rc.Email)
				case "tenant":
					key = m.Tenant
				case "campaign":
					key = m.Campaign
				case "sender":
					key = strings.ToLower(m.From)
				}
				g := groups[key]
				if g == nil {
					g = &GroupCount{Key: key}
					groups[key] = g
					order = append(order, key)
				}
				g.Recipients++
				if !seen[key] {
					seen[key] = true
					g.Messages++
				}
			}
			return nil
		}
		switch {
		case len(out.Messages) < limit:
			out.Messages = append(out.Messages, listedDead(m, rs))
		case out.Next == "":
			out.Next = out.Messages[len(out.Messages)-1].ID
		}
		return nil
	})
	if err != nil {
		return fail(http.StatusInternalServerError, "reading the dead letters: %v", err)
	}
	for _, k := range order {
		out.Groups = append(out.Groups, *groups[k])
	}
	sortGroups(out.Groups)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func sortGroups(gs []GroupCount) {
	for i := 1; i < len(gs); i++ {
		for j := i; j > 0; j-- {
			a, b := gs[j-1], gs[j]
			if a.Messages > b.Messages || a.Messages == b.Messages && a.Key <= b.Key {
				break
			}
			gs[j-1], gs[j] = b, a
		}
	}
}

// deadLetters: GET /api/admin/dead-letters/v1 — a list, or with id= one
// dead letter (body=1: with the message).
func (h *handler) deadLetters(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	q := r.URL.Query()
	id := strings.TrimSpace(q.Get("id"))
	if id == "" {
		lq, err := parseList(q, true)
		if err != nil {
			return err
		}
		if lq.f.Tenant, err = c.scope(lq.f.Tenant); err != nil {
			return err
		}
		if lq.f.State != "" {
			return fail(http.StatusUnprocessableEntity, "state: dead letters have none to filter on")
		}
		return h.deadList(w, lq)
	}
	m, err := h.deadLetter(id, c)
	if err != nil {
		return err
	}
	var rs []ListedRecipient
	for _, rc := range m.Recipients {
		rs = append(rs, ListedRecipient{Email: rc.Addr, State: rc.State.String(), Attempts: rc.Attempts, LastReply: rc.LastReply})
	}
	lm := listedDead(m, rs)
	if b := q.Get("body"); b == "1" || b == "true" {
		body, berr := h.opts.Dead.Body(m)
		if berr != nil {
			return fail(http.StatusInternalServerError, "reading dead letter %s: %v", id, berr)
		}
		s := string(body)
		lm.Data = &s
	}
	writeJSON(w, http.StatusOK, lm)
	return nil
}

// deadLetter reads dead letter id if the caller may see it (404 otherwise).
func (h *handler) deadLetter(id string, c caller) (*queue.Message, *apiError) {
	if h.opts.Dead == nil {
		return nil, fail(http.StatusNotFound, "no dead letter with id %q", id)
	}
	m, err := h.opts.Dead.DeadLetter(id)
	switch {
	case errors.Is(err, queue.ErrNotFound) || err == nil && !c.owns(m.Tenant):
		return nil, fail(http.StatusNotFound, "no dead letter with id %q", id)
	case err != nil:
		return nil, fail(http.StatusInternalServerError, "reading dead letter %s: %v", id, err)
	}
	return m, nil
}

// deadIDs returns the dead letters a requeue or purge names.
func (h *handler) deadIDs(w http.ResponseWriter, r *http.Request, c caller) ([]string, *apiError) {
	var req DeadLetterRequest
	if err := decode(w, r, &req); err != nil {
		return nil, err
	}
	named := req.Domain != "" || req.Tenant != "" || req.Campaign != ""
	switch {
	case len(req.IDs) > 0 && (named || req.Since != ""):
		return nil, fail(http.StatusUnprocessableEntity, "give ids or filters (domain, tenant, campaign, since), not both")
	case len(req.IDs) > MaxRetryIDs:
		return nil, fail(http.StatusUnprocessableEntity, "at most %d ids per request", MaxRetryIDs)
	case len(req.IDs) > 0:
		ids, err := cleanIDs(req.IDs)
		if err != nil {
			return nil, err
		}
		var missing []string
		for _, id := range ids {
			if _, err := h.deadLetter(id, c); err != nil {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return nil, fail(http.StatusNotFound, "no dead letter with id %s", quoteList(missing))
		}
		return ids, nil
	case !named:
		return nil, fail(http.StatusUnprocessableEntity, "ids, or at least one of domain, tenant or campaign, is required")
	}
	lq := listQuery{f: delivery.ListFilter{Domain: req.Domain, Tenant: req.Tenant, Campaign: req.Campaign}.Normalize()}
	if req.Since != "" {
		var err error
		if lq.since, err = ParseDuration(req.Since); err != nil {
			return nil, fail(http.StatusUnprocessableEntity, "since: %v", err)
		}
	}
	var aerr *apiError
	if lq.f.Tenant, aerr = c.scope(lq.f.Tenant); aerr != nil {
		return nil, aerr
	}
	if h.opts.Dead == nil {
		return nil, nil
	}
	now := h.opts.Now()
	var ids []string
	err := h.opts.Dead.ScanDeadAfter("", func(m *queue.Message) error {
		if len(deadMatch(m, &lq, now)) > 0 {
			ids = append(ids, m.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "reading the dead letters: %v", err)
	}
	return ids, nil
}

// deadRequeue: POST /api/admin/dead-letters/v1 — the dead letters go back
// to the scheduled queue, due now, with fresh retry counters.
func (h *handler) deadRequeue(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	ids, err := h.deadIDs(w, r, c)
	if err != nil {
		return err
	}
	out := DeadLetterV1Response{IDs: []string{}}
	for _, id := range ids {
		m, rerr := h.opts.Dead.RequeueDead(id, h.opts.Now())
		if errors.Is(rerr, queue.ErrNotFound) {
			continue // purged or requeued meanwhile
		}
		if rerr != nil {
			return fail(http.StatusInternalServerError, "requeueing %s: %v (requeued before it: %d)", id, rerr, out.Count)
		}
		if qerr := h.opts.Loop.Enqueue(m); qerr != nil {
			h.log.Error("admin dead-letter requeue: the message is back in the spool, delivery took it not", "id", id, "err", qerr)
		}
		out.Count++
		out.IDs = append(out.IDs, id)
	}
	h.log.Info("admin dead-letter requeue", "by", c.who, "requeued", out.Count, "ids", out.IDs)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deadPurge: DELETE /api/admin/dead-letters/v1 — the dead letters are
// removed for good.
func (h *handler) deadPurge(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	ids, err := h.deadIDs(w, r, c)
	if err != nil {
		return err
	}
	out := DeadLetterV1Response{IDs: []string{}}
	for _, id := range ids {
		perr := h.opts.Dead.PurgeDead(id)
		if errors.Is(perr, queue.ErrNotFound) {
			continue
		}
		if perr != nil {
			return fail(http.StatusInternalServerError, "purging %s: %v (purged before it: %d)", id, perr, out.Count)
		}
		out.Count++
		out.IDs = append(out.IDs, id)
	}
	h.log.Info("admin dead-letter purge", "by", c.who, "purged", out.Count, "ids", out.IDs)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// queueAction reads the messages a queue action names: ids (all queued,
// the caller's), or every message its filters match.
func (h *handler) queueAction(w http.ResponseWriter, r *http.Request, c caller) ([]string, *QueueActionRequest, *apiError) {
	var req QueueActionRequest
	if err := decode(w, r, &req); err != nil {
		return nil, nil, err
	}
	f := delivery.ListFilter{Domain: req.Domain, Site: req.Site, Tenant: req.Tenant, Campaign: req.Campaign,
		Sender: req.Sender, Recipient: req.Recipient, MinAttempts: req.MinAttempts, State: req.State}
	if req.Older != "" {
		var err error
		if f.Older, err = ParseDuration(req.Older); err != nil {
			return nil, nil, fail(http.StatusUnprocessableEntity, "older: %v", err)
		}
	}
	f = f.Normalize()
	switch {
	case len(req.IDs) > 0 && !f.IsZero():
		return nil, nil, fail(http.StatusUnprocessableEntity, "give ids or filters, not both")
	case len(req.IDs) > MaxRetryIDs:
		return nil, nil, fail(http.StatusUnprocessableEntity, "at most %d ids per request", MaxRetryIDs)
	case len(req.IDs) > 0:
		ids, err := cleanIDs(req.IDs)
		if err != nil {
			return nil, nil, err
		}
		if missing := h.opts.Loop.Known(ids, c.tenant); len(missing) > 0 {
			return nil, nil, fail(http.StatusNotFound, "no queued message with id %s", quoteList(missing))
		}
		return ids, &req, nil
	case f.IsZero():
		return nil, nil, fail(http.StatusUnprocessableEntity, "ids, or at least one filter, is required")
	case f.State == StateDead:
		return nil, nil, fail(http.StatusUnprocessableEntity, "state dead: use the dead-letter purge")
	}
	if err := f.Validate(); err != nil {
		return nil, nil, fail(http.StatusUnprocessableEntity, "%v", err)
	}
	var aerr *apiError
	if f.Tenant, aerr = c.scope(f.Tenant); aerr != nil {
		return nil, nil, aerr
	}
	return h.opts.Loop.MatchIDs(r.Context(), f), &req, nil
}

// queueBounce: POST /api/admin/queue/v1/bounce — every pending recipient
// of the messages is bounced (AdminBounce records, a bounce message to the
// sender when send_bounces is on).
func (h *handler) queueBounce(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	ids, req, err := h.queueAction(w, r, c)
	if err != nil {
		return err
	}
	res, _ := h.opts.Loop.BounceMessages(ids, c.tenant, req.Reason)
	h.log.Info("admin queue bounce", "by", c.who, "messages", res.Messages, "recipients", res.Recipients, "reason", req.Reason, "ids", quoteList(ids))
	writeJSON(w, http.StatusOK, QueueActionV1Response{Messages: res.Messages, Recipients: res.Recipients})
	return nil
}

// queueDelete: POST /api/admin/queue/v1/delete — the messages are removed
// without a bounce (AdminDelete records).
func (h *handler) queueDelete(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	ids, req, err := h.queueAction(w, r, c)
	if err != nil {
		return err
	}
	res, _ := h.opts.Loop.DeleteMessages(ids, c.tenant, req.Reason)
	h.log.Info("admin queue delete", "by", c.who, "messages", res.Messages, "recipients", res.Recipients, "reason", req.Reason, "ids", quoteList(ids))
	writeJSON(w, http.StatusOK, QueueActionV1Response{Messages: res.Messages, Recipients: res.Recipients})
	return nil
}
