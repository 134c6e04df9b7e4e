package console

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"gannet/engine/admin"
	"gannet/engine/logrec"
	"gannet/mailaddr"
)

// apiTimeout bounds one page's calls of the admin API.
const apiTimeout = 10 * time.Second

// topSites is how many sites the overview lists.
const topSites = 10

// overviewData is the overview page.
type overviewData struct {
	Charts                      []chart
	Depth                       Depth
	Paths, Throttled, Suspended int
	Top                         []Path
}

// overview: GET /console/.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, ss *session) {
	c.render(w, r, http.StatusOK, "overview", ss, c.overviewData())
}

func (c *Console) overviewData() *overviewData {
	h := c.opts.History
	d := &overviewData{Depth: c.opts.Live.Depth()}
	d.Charts = []chart{
		newChart(h, "throughput", "Messages per second", "/s", []Series{SeriesIn, SeriesOut},
			[]string{"in (received)", "out (delivered)"}, []string{"s1", "s2"}),
		newChart(h, "queue", "Queue depth", "", []Series{SeriesScheduled, SeriesReady, SeriesSuspended, SeriesDead},
			[]string{"scheduled", "ready", "suspended", "dead"}, []string{"s1", "s2", "s3", "s4"}),
		newChart(h, "latency", "Delivery latency", "s", []Series{SeriesLatencyP50, SeriesLatencyP95},
			[]string{"p50", "p95"}, []string{"s1", "s3"}),
		newChart(h, "failures", "Failures per second", "/s", []Series{SeriesTransient, SeriesPermanent, SeriesTLSFailures},
			[]string{"transient", "permanent", "TLS"}, []string{"s3", "s4", "s5"}),
		newChart(h, "connections", "SMTP connections", "", []Series{SeriesConnsIn, SeriesConnsOut},
			[]string{"in", "out"}, []string{"s1", "s2"}),
	}
	// The busiest paths: a bounded selection, not a sort of them all.
	paths := c.opts.Live.Paths()
	d.Paths = len(paths)
	top := make([]Path, 0, topSites+1)
	depth := func(p *Path) int { return p.Ready + p.InFlight }
	for i := range paths {
		p := &paths[i]
		if p.Throttled {
			d.Throttled++
		}
		if !p.Suspended.IsZero() {
			d.Suspended++
		}
		if len(top) == topSites && depth(p) <= depth(&top[topSites-1]) {
			continue
		}
		j := len(top)
		top = append(top, *p)
		for ; j > 0 && depth(&top[j-1]) < depth(&top[j]); j-- {
			top[j-1], top[j] = top[j], top[j-1]
		}
		top = top[:min(len(top), topSites)]
	}
	d.Top = top
	return d
}

// destRow is one row of the destinations page.
type destRow struct {
	Kind               string // "site" or "domain"
	Name, Source       string
	Depth, Ready, Held int
	InFlight           int
	Rate, Limit        float64 // delivered per second now; the rate allowed (0 unlimited)
	ConnLimit, Conns   int
	Deferral           float64
	Attempts           int
	State              string // "", "backoff", "suspended"
	Reason             string
	Until              time.Time
	SuspensionID       string
	Errors             []ErrorEntry
	SelKey, SelValue   string // the action selector: site=… or domain=…
	HasAdminSuspension bool
}

// destinationsData is the destinations page.
type destinationsData struct {
	Sites, Domains []destRow
	Q, State       string
	Sort, Dir      string
	Query          url.Values
	Err            string
}

// destinations: GET /console/destinations?sort=&dir=&q=&state=.
func (c *Console) destinations(w http.ResponseWriter, r *http.Request, ss *session) {
	q := r.URL.Query()
	d := &destinationsData{Q: strings.TrimSpace(q.Get("q")), State: q.Get("state"), Sort: q.Get("sort"), Dir: q.Get("dir"), Query: q}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	var rules []admin.RuleEntry
	if err := c.callAPI(ctx, ss, http.MethodGet, admin.PathSuspend, nil, &rules); err != nil {
		d.Err = err.Error()
	}
	siteRule := map[string]admin.RuleEntry{}
	domainRule := map[string]admin.RuleEntry{}
	for _, ru := range rules {
		switch {
		case ru.Site != "" && ru.Domain == "" && ru.Tenant == "" && ru.Campaign == "":
			siteRule[strings.ToLower(ru.Site)] = ru
		case ru.Domain != "" && ru.Site == "" && ru.Tenant == "" && ru.Campaign == "":
			domainRule[ru.Domain] = ru
		}
	}
	for _, p := range c.opts.Live.Paths() {
		row := destRow{Kind: "site", Name: p.Site, Source: p.Source, Ready: p.Ready, InFlight: p.InFlight,
			Depth: p.Ready + p.InFlight, Limit: p.Rate, ConnLimit: p.ConnLimit, Conns: p.Connections,
			SelKey: "site", SelValue: p.Site}
		st := c.opts.Recent.Site(p.Site)
		row.Rate, row.Deferral, row.Attempts, row.Errors = st.Rate, st.Deferral, st.Attempts, st.Errors
		switch {
		case !p.Suspended.IsZero():
			row.State, row.Until, row.Reason = "suspended", p.Suspended, p.Reason
		case p.Throttled:
			row.State, row.Reason = "backoff", p.Reason
		}
		if ru, ok := siteRule[strings.ToLower(p.Site)]; ok {
			row.State, row.Reason, row.SuspensionID, row.HasAdminSuspension = "suspended", ru.Reason, ru.ID, true
			row.Until = derefTime(ru.Expires)
			if row.Reason == "" {
				row.Reason = "suspended by " + ru.Origin
			}
		}
		d.Sites = append(d.Sites, row)
	}
	var sum admin.QueueSummaryV1
	if err := c.callAPI(ctx, ss, http.MethodGet, admin.PathQueueSummary, nil, &sum); err != nil {
		d.Err = err.Error()
	}
	seen := map[string]bool{}
	conns := c.opts.Live.DomainConnections()
	for _, dr := range sum.Domains {
		seen[dr.Domain] = true
		row := destRow{Kind: "domain", Name: dr.Domain, Depth: dr.Recipients, Ready: dr.Ready, InFlight: dr.InFlight,
			Held: dr.Held, Limit: dr.EffectiveRate, SelKey: "domain", SelValue: dr.Domain}
		c.domainRow(&row, domainRule, conns)
		if dr.Suspended && row.State == "" {
			row.State = "suspended"
		}
		d.Domains = append(d.Domains, row)
	}
	for _, dom := range c.opts.Recent.DomainNames() {
		if !seen[dom] { // recent mail, none queued now
			seen[dom] = true
			row := destRow{Kind: "domain", Name: dom, SelKey: "domain", SelValue: dom}
			c.domainRow(&row, domainRule, conns)
			d.Domains = append(d.Domains, row)
		}
	}
	for dom := range domainRule {
		if !seen[dom] { // suspended with nothing queued
			row := destRow{Kind: "domain", Name: dom, SelKey: "domain", SelValue: dom}
			c.domainRow(&row, domainRule, conns)
			d.Domains = append(d.Domains, row)
		}
	}
	d.Sites = filterSort(d.Sites, d)
	d.Domains = filterSort(d.Domains, d)
	c.render(w, r, http.StatusOK, "destinations", ss, d)
}

func (c *Console) domainRow(row *destRow, rules map[string]admin.RuleEntry, conns map[string]int) {
	row.Conns = conns[row.Name]
	st := c.opts.Recent.Domain(row.Name)
	row.Rate, row.Deferral, row.Attempts, row.Errors = st.Rate, st.Deferral, st.Attempts, st.Errors
	if ru, ok := rules[row.Name]; ok {
		row.State, row.Reason, row.SuspensionID, row.HasAdminSuspension = "suspended", ru.Reason, ru.ID, true
		row.Until = derefTime(ru.Expires)
		if row.Reason == "" {
			row.Reason = "suspended by " + ru.Origin
		}
	}
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// filterSort applies the page's filter (q: a substring of the name,
// state: suspended, backoff or errors) and order.
func filterSort(rows []destRow, d *destinationsData) []destRow {
	q := strings.ToLower(d.Q)
	out := rows[:0]
	for _, row := range rows {
		if q != "" && !strings.Contains(strings.ToLower(row.Name), q) {
			continue
		}
		switch d.State {
		case "suspended", "backoff":
			if row.State != d.State {
				continue
			}
		case "errors":
			if len(row.Errors) == 0 {
				continue
			}
		}
		out = append(out, row)
	}
	key := func(a, b *destRow) int {
		switch d.Sort {
		case "rate":
			return cmp.Compare(a.Rate, b.Rate)
		case "conns":
			return cmp.Compare(a.Conns, b.Conns)
		case "deferral":
			return cmp.Compare(a.Deferral, b.Deferral)
		case "state":
			return cmp.Compare(a.State, b.State)
		case "name":
			return cmp.Compare(a.Name, b.Name)
		}
		return cmp.Compare(a.Depth, b.Depth)
	}
	desc := d.Dir != "asc"
	if d.Sort == "name" && d.Dir == "" {
		desc = false
	}
	slices.SortStableFunc(out, func(a, b destRow) int {
		k := key(&a, &b)
		if desc {
			k = -k
		}
		if k == 0 {
			k = cmp.Compare(a.Name, b.Name)
		}
		return k
	})
	return out
}

// sortLink is the destinations URL sorted by key, flipping the
// direction when it is already sorted by key.
func sortLink(q url.Values, key string) string {
	n := url.Values{}
	for k, v := range q {
		n[k] = v
	}
	dir := "desc"
	if key == "name" {
		dir = "asc"
	}
	if q.Get("sort") == key || q.Get("sort") == "" && key == "depth" {
		cur := q.Get("dir")
		if cur == "" {
			cur = dir
		}
		if cur == "desc" {
			dir = "asc"
		} else {
			dir = "desc"
		}
	}
	n.Set("sort", key)
	n.Set("dir", dir)
	return "/console/destinations?" + n.Encode()
}

// foundMessage is one result of a message search.
type foundMessage struct {
	ID, Sender, Tenant, Campaign string
	Recipients                   []string
	State                        string // queued state, or the last record's type
	Attempts                     int
	LastReply                    string
	When                         time.Time
	Queued                       bool
}

// messagesData is the messages page.
type messagesData struct {
	Filter   Filter
	Results  []foundMessage
	Matched  int
	Searched bool
	// FromLog: the log files were searched too (the queue and the recent
	// records had fewer than maxResults); LogPartial: the search stopped
	// at logSearchTime before the oldest file.
	FromLog, LogPartial bool
	Err                 string
}

// logSearchTime bounds the reading of the log files for one page.
const logSearchTime = 5 * time.Second

// maxResults bounds a search's results from each source.
const maxResults = 100

// messages: GET /console/messages?id=&sender=&recipient=&tenant=&campaign=.
func (c *Console) messages(w http.ResponseWriter, r *http.Request, ss *session) {
	q := r.URL.Query()
	f := Filter{ID: strings.TrimSpace(q.Get("id")), Sender: strings.TrimSpace(q.Get("sender")),
		Recipient: strings.TrimSpace(q.Get("recipient")), Tenant: strings.TrimSpace(q.Get("tenant")),
		Campaign: strings.TrimSpace(q.Get("campaign"))}
	d := &messagesData{Filter: f}
	if f == (Filter{}) {
		c.render(w, r, http.StatusOK, "messages", ss, d)
		return
	}
	d.Searched = true
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	seen := map[string]bool{}
	if f.ID != "" {
		var info admin.InspectMessageV1
		if err := c.callAPI(ctx, ss, http.MethodGet, admin.PathInspectMessage+"?id="+url.QueryEscape(f.ID), nil, &info); err == nil {
			m := info.Message
			fm := foundMessage{ID: info.ID, Sender: m.Sender, Tenant: m.Tenant, Campaign: m.Campaign, Recipients: m.Recipient,
				State: info.State, Attempts: m.NumAttempts, When: m.Created, Queued: true}
			d.Results = append(d.Results, fm)
			seen[info.ID] = true
		} else if statusOf(err) != http.StatusNotFound {
			d.Err = err.Error()
		}
	} else {
		v := url.Values{}
		for k, s := range map[string]string{"sender": f.Sender, "recipient": f.Recipient, "tenant": f.Tenant, "campaign": f.Campaign} {
			if s != "" {
				v.Set(k, s)
			}
		}
		v.Set("limit", itoa(maxResults))
		var list admin.QueueListV1
		if err := c.callAPI(ctx, ss, http.MethodGet, admin.PathQueue+"?"+v.Encode(), nil, &list); err != nil {
			d.Err = err.Error()
		}
		d.Matched = list.Matched
		for _, m := range list.Messages {
			fm := foundMessage{ID: m.ID, Sender: m.Sender, Tenant: m.Tenant, Campaign: m.Campaign, State: m.State,
				Attempts: m.NumAttempts, When: m.Created, Queued: true}
			for _, rc := range m.Recipients {
				fm.Recipients = append(fm.Recipients, rc.Email)
				if rc.LastReply != "" {
					fm.LastReply = rc.LastReply
				}
			}
			seen[m.ID] = true
			d.Results = append(d.Results, fm)
		}
	}
	// Messages no longer queued (delivered, bounced) from the recent log
	// records, then from the log files.
	found := func(rec *logrec.Record) {
		seen[rec.ID] = true
		d.Results = append(d.Results, foundMessage{ID: rec.ID, Sender: rec.Sender, Tenant: rec.Tenant, Campaign: rec.Campaign,
			Recipients: []string{rec.Recipient}, State: string(rec.Type), Attempts: rec.NumAttempts,
			LastReply: replyText(rec.Response), When: rec.Timestamp})
	}
	for _, rec := range c.opts.Recent.Search(f, maxResults) {
		if !seen[rec.ID] {
			found(&rec)
		}
	}
	if dir := c.logDir(); dir != "" && len(d.Results) < 2*maxResults {
		lctx, lcancel := context.WithTimeout(r.Context(), logSearchTime)
		recs, complete, err := searchLog(lctx, dir, f, maxResults, seen)
		lcancel()
		if err != nil {
			c.opts.Logger.Warn("console: searching the log files", "err", err)
		}
		d.FromLog, d.LogPartial = true, !complete
		for i := range recs {
			found(&recs[i])
		}
	}
	c.render(w, r, http.StatusOK, "messages", ss, d)
}

// messageData is a message's page.
type messageData struct {
	ID      string
	Queued  bool
	Info    admin.InspectMessageV1
	Records []recordRow
	// FromLog: the records were read from the log files too (the recent
	// ones did not go back to its Reception); LogPartial: that reading
	// stopped at logSearchTime.
	FromLog, LogPartial bool
	Err                 string
}

// recordRow is one log record of a message.
type recordRow struct {
	logrec.Record
	Reply  string
	Domain string
}

// message: GET /console/message?id=.
func (c *Console) message(w http.ResponseWriter, r *http.Request, ss *session) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if id == "" {
		http.Redirect(w, r, "/console/messages", http.StatusSeeOther)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	d := &messageData{ID: id}
	err := c.callAPI(ctx, ss, http.MethodGet, admin.PathInspectMessage+"?want_body=true&id="+url.QueryEscape(id), nil, &d.Info)
	switch {
	case err == nil:
		d.Queued = true
		d.Info.Message.Data = nil // the headers are shown, not the body
	case statusOf(err) != http.StatusNotFound:
		d.Err = err.Error()
	}
	recs := c.opts.Recent.ForMessage(id)
	if dir := c.logDir(); dir != "" && !slices.ContainsFunc(recs, func(r logrec.Record) bool { return r.Type == logrec.Reception }) {
		// Older than the recent records: the log files hold the rest.
		lctx, lcancel := context.WithTimeout(r.Context(), logSearchTime)
		disk, complete, err := messageRecords(lctx, dir, id)
		lcancel()
		if err != nil {
			c.opts.Logger.Warn("console: reading the log files", "id", id, "err", err)
		}
		d.FromLog, d.LogPartial = true, !complete
		recs = mergeRecords(disk, recs)
	}
	for _, rec := range recs {
		d.Records = append(d.Records, recordRow{Record: rec, Reply: replyText(rec.Response), Domain: mailaddr.Domain(rec.Recipient)})
	}
	if !d.Queued && len(d.Records) == 0 && d.Err == "" {
		c.refuse(w, r, ss, http.StatusNotFound, "No message "+id+" is queued, and no recent log record names it.")
		return
	}
	c.render(w, r, http.StatusOK, "message", ss, d)
}

// groupRow is one tenant or campaign.
type groupRow struct {
	Name       string
	Counts     GroupCounts
	Classes    []classCount
	Queue      admin.GroupRow
	Queued     bool
	SelKey     string
	Suspension string // id of a suspension of exactly this group
}

type classCount struct {
	Class string
	N     int
}

// tenantsData is the tenants page.
type tenantsData struct {
	Tenants, Campaigns []groupRow
	Err                string
}

// tenants: GET /console/tenants.
func (c *Console) tenants(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	d := &tenantsData{}
	var sum admin.QueueSummaryV1
	if err := c.callAPI(ctx, ss, http.MethodGet, admin.PathQueueSummary, nil, &sum); err != nil {
		d.Err = err.Error()
	}
	var rules []admin.RuleEntry
	if err := c.callAPI(ctx, ss, http.MethodGet, admin.PathSuspend, nil, &rules); err != nil {
		d.Err = err.Error()
	}
	tc, cc := c.opts.Recent.Groups()
	build := func(key string, queue []admin.GroupRow, counts map[string]GroupCounts) []groupRow {
		byName := map[string]*groupRow{}
		var out []*groupRow
		get := func(name string) *groupRow {
			g := byName[name]
			if g == nil {
				g = &groupRow{Name: name, SelKey: key}
				byName[name] = g
				out = append(out, g)
			}
			return g
		}
		for _, q := range queue {
			g := get(q.Name)
			g.Queue, g.Queued = q, true
		}
		for name, n := range counts {
			g := get(name)
			g.Counts = n
			for cl, k := range n.ByClass {
				g.Classes = append(g.Classes, classCount{cl, k})
			}
			slices.SortFunc(g.Classes, func(a, b classCount) int { return cmp.Or(-cmp.Compare(a.N, b.N), cmp.Compare(a.Class, b.Class)) })
		}
		for _, ru := range rules {
			sel := map[string]string{"tenant": ru.Tenant, "campaign": ru.Campaign}
			if ru.Domain == "" && ru.Site == "" && sel[key] != "" && (key == "tenant" && ru.Campaign == "" || key == "campaign" && ru.Tenant == "") {
				get(sel[key]).Suspension = ru.ID
			}
		}
		res := make([]groupRow, 0, len(out))
		for _, g := range out {
			if g.Name != "" {
				res = append(res, *g)
			}
		}
		slices.SortFunc(res, func(a, b groupRow) int { return cmp.Compare(a.Name, b.Name) })
		return res
	}
	d.Tenants = build("tenant", sum.Tenants, tc)
	d.Campaigns = build("campaign", sum.Campaigns, cc)
	c.render(w, r, http.StatusOK, "tenants", ss, d)
}
