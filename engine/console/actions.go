package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gannet/engine/admin"
)

// request is an action as the confirmation page and the form carry it.
type request struct {
	Action                         string // suspend, resume, bounce, requeue
	Domain, Site, Tenant, Campaign string
	ID                             string // a message (bounce, requeue) or a suspension (resume)
	Reason, Duration               string
}

// actions are the console's actions.
var actions = map[string]string{
	"suspend": "Suspend delivery",
	"resume":  "Resume delivery",
	"bounce":  "Bounce the queued mail",
	"requeue": "Retry now (requeue)",
}

func requestOf(v url.Values) request {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return request{Action: g("action"), Domain: g("domain"), Site: g("site"), Tenant: g("tenant"), Campaign: g("campaign"),
		ID: g("id"), Reason: g("reason"), Duration: g("duration")}
}

// target says what an action applies to, for people.
func (q request) target() string {
	var parts []string
	for _, p := range []struct{ k, v string }{{"message", q.ID}, {"domain", q.Domain}, {"site", q.Site}, {"tenant", q.Tenant}, {"campaign", q.Campaign}} {
		if p.v != "" {
			if p.k == "message" && q.Action == "resume" {
				p.k = "suspension"
			}
			parts = append(parts, p.k+" "+p.v)
		}
	}
	return strings.Join(parts, ", ")
}

// check refuses an action that names nothing or is unknown.
func (q request) check() string {
	if _, ok := actions[q.Action]; !ok {
		return "Unknown action " + fmt.Sprintf("%q", q.Action) + "."
	}
	if q.ID == "" && q.Domain == "" && q.Site == "" && q.Tenant == "" && q.Campaign == "" {
		return "The action names no message, domain, site, tenant or campaign."
	}
	if q.ID != "" && q.Action == "suspend" {
		return "Suspend a domain, site, tenant or campaign, not one message."
	}
	return ""
}

// confirmData is the confirmation page.
type confirmData struct {
	Req    request
	Title  string
	Target string
}

// confirm: GET /console/confirm?action=…&domain=…: what the action will
// do, and the form that does it.
func (c *Console) confirm(w http.ResponseWriter, r *http.Request, ss *session) {
	q := requestOf(r.URL.Query())
	if msg := q.check(); msg != "" {
		c.refuse(w, r, ss, http.StatusUnprocessableEntity, msg)
		return
	}
	if q.Action == "suspend" && q.Duration == "" {
		q.Duration = "1h"
	}
	c.render(w, r, http.StatusOK, "confirm", ss, &confirmData{Req: q, Title: actions[q.Action], Target: q.target()})
}

// doneData is the page after an action.
type doneData struct {
	Title, Target, Result string
	Back                  string
}

// action: POST /console/action (CSRF checked by ServeHTTP). A viewer is
// refused; an admin's action is the admin API's request, made as the
// console user.
func (c *Console) action(w http.ResponseWriter, r *http.Request, ss *session) {
	q := requestOf(r.PostForm)
	if ss.Role != RoleAdmin {
		c.opts.Logger.Warn("console action refused: viewer", "by", ss.Who, "action", q.Action, "target", q.target())
		c.refuse(w, r, ss, http.StatusForbidden, "A viewer cannot act: log in with an admin key.")
		return
	}
	if msg := q.check(); msg != "" {
		c.refuse(w, r, ss, http.StatusUnprocessableEntity, msg)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	result, err := c.do(ctx, ss, q)
	if err != nil {
		c.refuse(w, r, ss, statusOf(err), "The admin API refused: "+err.Error())
		return
	}
	back := "/console/destinations"
	switch {
	case q.ID != "" && q.Action != "resume":
		back = "/console/message?id=" + url.QueryEscape(q.ID)
	case q.Tenant != "" || q.Campaign != "":
		back = "/console/tenants"
	}
	c.render(w, r, http.StatusOK, "done", ss, &doneData{Title: actions[q.Action], Target: q.target(), Result: result, Back: back})
}

// do makes the admin API request of an action and says what it did.
func (c *Console) do(ctx context.Context, ss *session, q request) (string, error) {
	rule := admin.RuleRequest{Domain: q.Domain, Site: q.Site, Tenant: q.Tenant, Campaign: q.Campaign, Reason: q.Reason}
	switch q.Action {
	case "suspend":
		rule.Duration = q.Duration
		var res admin.SuspendV1Response
		if err := c.callAPI(ctx, ss, http.MethodPost, admin.PathSuspend, rule, &res); err != nil {
			return "", err
		}
		return "Suspended (suspension " + res.ID + ").", nil
	case "resume":
		req := admin.CancelRequest{ID: q.ID, Domain: q.Domain, Site: q.Site, Tenant: q.Tenant, Campaign: q.Campaign}
		var res admin.ResumeV1Response
		if err := c.callAPI(ctx, ss, http.MethodDelete, admin.PathSuspend, req, &res); err != nil {
			return "", err
		}
		return fmt.Sprintf("Resumed %d suspension(s): %s.", len(res.Resumed), strings.Join(res.Resumed, ", ")), nil
	case "bounce":
		if q.ID != "" {
			var res admin.QueueActionV1Response
			if err := c.callAPI(ctx, ss, http.MethodPost, admin.PathQueueBounce, admin.QueueActionRequest{IDs: []string{q.ID}, Reason: q.Reason}, &res); err != nil {
				return "", err
			}
			return fmt.Sprintf("Bounced %d message(s), %d recipient(s).", res.Messages, res.Recipients), nil
		}
		rule.Duration = "0" // the queued mail only: no rule stays in force
		var res admin.BounceV1Response
		if err := c.callAPI(ctx, ss, http.MethodPost, admin.PathBounce, rule, &res); err != nil {
			return "", err
		}
		return fmt.Sprintf("Bounced %d recipient(s).", res.TotalBounced), nil
	case "requeue":
		req := admin.RetryRequest{Domain: q.Domain, Site: q.Site, Tenant: q.Tenant, Campaign: q.Campaign}
		if q.ID != "" {
			req = admin.RetryRequest{IDs: []string{q.ID}}
		}
		var res admin.RetryV1Response
		if err := c.callAPI(ctx, ss, http.MethodPost, admin.PathRetry, req, &res); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d message(s), %d recipient(s) due now.", res.Retried, res.Recipients), nil
	}
	return "", fmt.Errorf("unknown action %q", q.Action)
}
