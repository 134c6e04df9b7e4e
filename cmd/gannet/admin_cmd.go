package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gannet/engine/admin"
)

// cmdQueue is "gannet queue summary", "gannet queue inspect ID" and
// "gannet queue retry ID…|-domain D …".
func cmdQueue(args []string, stdout, stderr io.Writer) int {
	const synopsis = "queue summary [-cluster] | inspect ID [-body] | list [filters] [-limit N] [-after CURSOR] [-group-by K] | bounce|delete ID...|filters [-reason R] [-yes] | retry|hold|release ID... | retry|hold|release -domain D [-tenant T] [-campaign C] [-site S] | hold -list  [-reason R] [-api URL] [-key KEY] [-json]"
	fs := newFlags("queue", synopsis, stderr)
	c := addAPIFlags(fs)
	body := fs.Bool("body", false, "inspect: also print the message as spooled")
	sel := &ruleFlags{}
	fs.StringVar(&sel.domain, "domain", "", "retry: the deferred mail to this destination `domain`")
	fs.StringVar(&sel.tenant, "tenant", "", "retry: the deferred mail of this `tenant`")
	fs.StringVar(&sel.campaign, "campaign", "", "retry: the deferred mail of this `campaign`")
	fs.StringVar(&sel.site, "site", "", "retry: the deferred mail to this MX `site` (as the queue summary names it)")
	fs.StringVar(&sel.reason, "reason", "", "hold: the `reason`, kept in the list")
	list := fs.Bool("list", false, "hold -list: list the holds in force")
	clusterWide := fs.Bool("cluster", false, "summary: sum the summaries of every live node of the cluster (each asked at the admin address it registered)")
	lf := addListFlags(fs)
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		switch pos[0] {
		case "list":
			if len(pos) != 1 || *list {
				fs.Usage()
				return 2
			}
			return queueList(c, lf, sel, stdout, stderr)
		case "bounce", "delete":
			return queueAct(c, fs, pos[0], pos[1:], lf, sel, stdout, stderr)
		case "retry":
			return queueRetry(c, fs, pos[1:], sel, stdout, stderr)
		case "hold":
			if *list {
				return listRules(c, admin.PathHold, "hold", stdout, stderr)
			}
			return queueHold(c, fs, pos[1:], sel, stdout, stderr)
		case "release":
			return queueRelease(c, fs, pos[1:], sel, stdout, stderr)
		}
	}
	if *clusterWide && !(len(pos) == 1 && pos[0] == "summary") {
		fmt.Fprintln(stderr, "gannet queue: -cluster goes with summary")
		fs.Usage()
		return 2
	}
	if !sel.empty() || sel.reason != "" || *list || lf.filtered() {
		fmt.Fprintln(stderr, "gannet queue: -domain, -tenant, -campaign, -site, -reason and -list go with list, bounce, delete, retry, hold or release")
		fs.Usage()
		return 2
	}
	switch {
	case len(pos) == 1 && pos[0] == "summary" && *clusterWide:
		return clusterSummary(c, stdout, stderr)
	case len(pos) == 1 && pos[0] == "summary":
		return queueSummary(c, stdout, stderr)
	case len(pos) == 2 && pos[0] == "inspect":
		return queueInspect(c, pos[1], *body, stdout, stderr)
	}
	fs.Usage()
	return 2
}

// queueHold is "gannet queue hold": the mail named by ids or by the
// selector is not delivered until released (POST /api/admin/hold/v1).
func queueHold(c *apiClient, fs *flag.FlagSet, ids []string, sel *ruleFlags, stdout, stderr io.Writer) int {
	if len(ids) > 0 == !sel.empty() {
		fmt.Fprintln(stderr, "gannet queue hold: give message ids, or at least one of -domain, -tenant, -campaign, -site (or -list)")
		fs.Usage()
		return 2
	}
	req := admin.HoldRequest{IDs: ids, Domain: sel.domain, Tenant: sel.tenant, Campaign: sel.campaign, Site: sel.site, Reason: sel.reason}
	var r admin.HoldV1Response
	ok, err := c.call(stdout, http.MethodPost, admin.PathHold, nil, req, &r)
	if err != nil {
		return fail(stderr, "queue hold", err)
	}
	if ok {
		fmt.Fprintf(stdout, "hold %s in force; release with: gannet queue release %s\n", r.ID, r.ID)
	}
	return 0
}

// queueRelease is "gannet queue release": holds end, by their ids, by the
// ids of the messages they hold, or by the selector they were made with
// (DELETE /api/admin/hold/v1).
func queueRelease(c *apiClient, fs *flag.FlagSet, ids []string, sel *ruleFlags, stdout, stderr io.Writer) int {
	if len(ids) > 0 == !sel.empty() || sel.reason != "" {
		fmt.Fprintln(stderr, "gannet queue release: give hold or message ids, or the selector the hold was made with")
		fs.Usage()
		return 2
	}
	req := admin.ReleaseRequest{IDs: ids, Domain: sel.domain, Tenant: sel.tenant, Campaign: sel.campaign, Site: sel.site}
	var r admin.ReleaseV1Response
	ok, err := c.call(stdout, http.MethodDelete, admin.PathHold, nil, req, &r)
	if err != nil {
		return fail(stderr, "queue release", err)
	}
	if ok {
		fmt.Fprintf(stdout, "released %s\n", strings.Join(r.Released, " "))
	}
	return 0
}

// queueRetry is "gannet queue retry": the deferred mail named by ids or by
// the selector is due now (POST /api/admin/retry/v1).
func queueRetry(c *apiClient, fs *flag.FlagSet, ids []string, sel *ruleFlags, stdout, stderr io.Writer) int {
	if len(ids) > 0 == !sel.empty() {
		fmt.Fprintln(stderr, "gannet queue retry: give message ids, or at least one of -domain, -tenant, -campaign, -site")
		fs.Usage()
		return 2
	}
	req := admin.RetryRequest{IDs: ids, Domain: sel.domain, Tenant: sel.tenant, Campaign: sel.campaign, Site: sel.site}
	var r admin.RetryV1Response
	ok, err := c.call(stdout, http.MethodPost, admin.PathRetry, nil, req, &r)
	if err != nil {
		return fail(stderr, "queue retry", err)
	}
	if ok {
		fmt.Fprintf(stdout, "%d message(s), %d recipient(s) due now\n", r.Retried, r.Recipients)
	}
	return 0
}

func queueSummary(c *apiClient, stdout, stderr io.Writer) int {
	var s admin.QueueSummaryV1
	ok, err := c.call(stdout, http.MethodGet, admin.PathQueueSummary, nil, nil, &s)
	if err != nil {
		return fail(stderr, "queue summary", err)
	}
	if ok {
		printSummary(stdout, &s)
	}
	return 0
}

// rate formats messages per second; 0 is unlimited (or unknown).
func rate(r float64) string {
	switch {
	case r <= 0:
		return "-"
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
	case r >= 1:
		return strconv.FormatFloat(r, 'f', 1, 64) + "/s"
	}
	return strconv.FormatFloat(r*60, 'f', 1, 64) + "/m"
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// countOrDash formats a count; 0 (none, or unknown) is "-".
func countOrDash(n int) string {
	if n <= 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func countCols(c admin.Counts) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d", c.Recipients, c.Scheduled, c.Ready, c.InFlight, c.Held)
}

const countHead = "RCPTS\tSCHEDULED\tREADY\tIN-FLIGHT\tHELD"

// printSummary prints the summary as aligned tables.
func printSummary(w io.Writer, s *admin.QueueSummaryV1) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	t := s.Totals
	fmt.Fprintf(tw, "%d message(s), %d recipient(s): %d scheduled, %d ready, %d in flight, %d held; %d suspension(s), %d bounce(s), %d hold(s) in force\n",
		t.Messages, t.Recipients, t.Scheduled, t.Ready, t.InFlight, t.Held, t.Suspensions, t.Bounces, t.Holds)
	if t.Corrupt > 0 {
		more := ""
		if n := t.Corrupt - len(s.CorruptIDs); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		fmt.Fprintf(tw, "%d corrupt message(s) quarantined in the spool (gannet queue inspect ID): %s%s\n",
			t.Corrupt, strings.Join(s.CorruptIDs, " "), more)
	}
	if t.Dead > 0 {
		fmt.Fprintf(tw, "%d dead letter(s) kept in the spool (gannet dead list)\n", t.Dead)
	}
	if len(s.Backoff) > 0 {
		// Sites in backoff mode, even with nothing queued for them.
		fmt.Fprintln(tw)
		printBackoffs(tw, s.Backoff)
	}
	if len(s.Tuned) > 0 {
		// What the sites' self-tuning learned, with or without mail.
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "TUNED SITE	RATE	THROTTLED AT	CONNS	REFUSED AT	CHANGED	WHY")
		for _, u := range s.Tuned {
			why := u.Reason
			if u.ConnectionsReason != "" {
				why = strings.TrimPrefix(why+"; conns: "+u.ConnectionsReason, "; ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Site, rate(u.Rate), rate(u.Throttled), countOrDash(u.Connections),
				countOrDash(u.ConnectionsRefusedAt), u.Changed.Local().Format(time.RFC3339), why)
		}
	}
	if len(s.Warmup) > 0 {
		fmt.Fprintln(tw)
		printWarmup(tw, s.Warmup) // warmup_cmd.go
	}
	if len(s.Queues) == 0 {
		fmt.Fprintln(tw, "The queue is empty.")
		tw.Flush()
		return
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "QUEUE\tSITE\tMSGS\t"+countHead+"\tRATE\tSUSPENDED\tBOUNCING")
	for _, q := range s.Queues {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", q.Name, orDash(q.Site), q.Messages, countCols(q.Counts),
			rate(q.EffectiveRate), yes(q.Suspended), yes(q.Bouncing))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DOMAIN\tMSGS\t"+countHead+"\tRATE\tSUSPENDED")
	for _, d := range s.Domains {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", d.Domain, d.Messages, countCols(d.Counts), rate(d.EffectiveRate), yes(d.Suspended))
	}
	group := func(title string, rows []admin.GroupRow) {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, title+"\t"+countHead+"\tRATE\tSUSPENDED")
		for _, g := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", orDash(g.Name), countCols(g.Counts), rate(g.EffectiveRate), yes(g.Suspended))
		}
	}
	group("TENANT", s.Tenants)
	group("CAMPAIGN", s.Campaigns)
	if len(s.Sites) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "SITE\tSOURCE\tCONNS\tREADY\tIN-FLIGHT\tRATE\tSUSPENDED\tBACKOFF")
		for _, st := range s.Sites {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", st.Site, orDash(st.Source), st.Connections, st.Ready, st.InFlight,
				rate(st.EffectiveRate), yes(st.Suspended), yes(st.Backoff))
		}
	}
	tw.Flush()
}

func queueInspect(c *apiClient, id string, body bool, stdout, stderr io.Writer) int {
	q := url.Values{"id": {id}}
	if body {
		q.Set("want_body", "true")
	}
	var in admin.InspectMessageV1
	ok, err := c.call(stdout, http.MethodGet, admin.PathInspectMessage, q, nil, &in)
	if err != nil {
		return fail(stderr, "queue inspect", err)
	}
	if !ok {
		return 0
	}
	m := &in.Message
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	corrupt := in.State == admin.StateCorrupt && in.Corrupt != nil
	if corrupt {
		printCorrupt(tw, &in)
		if len(m.Recipients) == 0 {
			fmt.Fprintln(tw, "\nThe envelope is not known: the index entry does not decode.")
			tw.Flush()
			return 0
		}
	} else {
		fmt.Fprintf(tw, "ID\t%s\n", in.ID)
	}
	rows := [][2]string{
		{"Sender", orDash(m.Sender)}, {"Created", m.Created.Local().Format(time.RFC3339)},
		{"Size", strconv.Itoa(m.Size) + " bytes"}, {"Tenant", orDash(m.Tenant)}, {"Campaign", orDash(m.Campaign)},
		{"Priority", strconv.Itoa(m.Priority)}, {"Attempts", strconv.Itoa(m.NumAttempts)},
	}
	if !corrupt { // a quarantined message has no next attempt
		due := "now"
		if m.Due != nil {
			due = m.Due.Local().Format(time.RFC3339) + " (in " + time.Until(*m.Due).Round(time.Second).String() + ")"
		}
		rows = append(rows, [2]string{"Next due", due})
	}
	if m.Ret != "" || m.EnvID != "" { // DSN parameters (RFC 3461)
		rows = append(rows, [2]string{"DSN", strings.TrimSpace(prefixed("RET=", m.Ret) + " " + prefixed("ENVID=", m.EnvID))})
	}
	for _, kv := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "RECIPIENT\tSTATE\tATTEMPTS\tSITE\tNEXT-DUE\tLAST-REPLY")
	for _, r := range m.Recipients {
		state := r.State
		switch {
		case r.Held:
			state += " (held)"
		case r.InFlight:
			state += " (in flight)"
		}
		next := "-"
		if r.NextDue != nil {
			next = r.NextDue.Local().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.Email, state, r.Attempts, orDash(r.Site), next, orDash(r.LastReply))
	}
	dsnHeader := false
	for _, r := range m.Recipients {
		if r.Notify == "" && r.ORcpt == "" {
			continue
		}
		if !dsnHeader {
			fmt.Fprintln(tw, "\nRECIPIENT\tNOTIFY\tORCPT\tDELAY-DSN-SENT")
			dsnHeader = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\n", r.Email, orDash(r.Notify), orDash(r.ORcpt), r.DelayDSNSent)
	}
	tw.Flush()
	if m.Data != nil {
		fmt.Fprintln(stdout)
		io.WriteString(stdout, *m.Data)
	}
	return 0
}

// prefixed returns prefix+v, or "" for an empty v.
func prefixed(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}

// printCorrupt prints why the spool quarantined an inspected message.
func printCorrupt(tw io.Writer, in *admin.InspectMessageV1) {
	c := in.Corrupt
	what := map[string]string{
		"index":  "its index entry does not decode",
		"record": "its body record does not read back; the body is lost",
	}[c.Kind]
	fmt.Fprintf(tw, "ID\t%s\n", in.ID)
	fmt.Fprintf(tw, "State\tcorrupt, quarantined %s: not delivered, not bounced\n", c.Quarantined.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "Corrupt\t%s (%s)\n", c.Kind, orDash(what))
	fmt.Fprintf(tw, "Reason\t%s\n", orDash(c.Reason))
	fmt.Fprintf(tw, "Raw size\t%d bytes\n", c.RawSize)
}

// ruleFlags are the selector, reason and duration flags of bounce and
// suspend.
type ruleFlags struct {
	domain, tenant, campaign, site, reason, duration string
}

func addRuleFlags(fs *flag.FlagSet, what string) *ruleFlags {
	r := &ruleFlags{}
	fs.StringVar(&r.domain, "domain", "", "destination `domain` to "+what)
	fs.StringVar(&r.tenant, "tenant", "", "`tenant` to "+what)
	fs.StringVar(&r.campaign, "campaign", "", "`campaign` to "+what)
	fs.StringVar(&r.site, "site", "", "MX `site` (as the queue summary names it) to "+what)
	fs.StringVar(&r.reason, "reason", "", "`reason`, kept in the log records and the list")
	return r
}

func (r *ruleFlags) empty() bool {
	return r.domain == "" && r.tenant == "" && r.campaign == "" && r.site == ""
}

func (r *ruleFlags) request() admin.RuleRequest {
	return admin.RuleRequest{Domain: r.domain, Tenant: r.tenant, Campaign: r.campaign, Site: r.site,
		Reason: r.reason, Duration: r.duration}
}

// cmdBounce is "gannet bounce -domain D …", "bounce -list", "bounce -cancel ID".
func cmdBounce(args []string, stdout, stderr io.Writer) int {
	const synopsis = "bounce -domain D [-tenant T] [-campaign C] [-site S] [-reason R] [-duration D] | bounce -list | bounce -cancel ID  [-api URL] [-key KEY] [-json]"
	fs := newFlags("bounce", synopsis, stderr)
	c := addAPIFlags(fs)
	rf := addRuleFlags(fs, "bounce")
	fs.StringVar(&rf.duration, "duration", "", "keep bouncing new matching mail this `long` (Go duration or Nd; default 5m, 0: the queued mail only)")
	list := fs.Bool("list", false, "list the bounces in force")
	cancel := fs.String("cancel", "", "cancel the bounce with this `id`")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	switch {
	case *list:
		return listRules(c, admin.PathBounce, "bounce", stdout, stderr)
	case *cancel != "":
		var e admin.RuleEntry
		ok, err := c.call(stdout, http.MethodDelete, admin.PathBounce, nil, admin.CancelRequest{ID: *cancel}, &e)
		if err != nil {
			return fail(stderr, "bounce", err)
		}
		if ok {
			fmt.Fprintf(stdout, "bounce %s cancelled (%d recipient(s) bounced while in force)\n", e.ID, e.TotalBounced)
		}
		return 0
	case rf.empty():
		fmt.Fprintln(stderr, "gannet bounce: give at least one of -domain, -tenant, -campaign, -site (or -list, -cancel ID)")
		fs.Usage()
		return 2
	}
	var b admin.BounceV1Response
	ok, err := c.call(stdout, http.MethodPost, admin.PathBounce, nil, rf.request(), &b)
	if err != nil {
		return fail(stderr, "bounce", err)
	}
	if ok {
		fmt.Fprintf(stdout, "bounce %s: %d recipient(s) bounced\n", b.ID, b.TotalBounced)
		names := make([]string, 0, len(b.Bounced))
		for q := range b.Bounced {
			names = append(names, q)
		}
		sort.Strings(names)
		if len(names) > 0 {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "QUEUE\tBOUNCED")
			for _, q := range names {
				fmt.Fprintf(tw, "%s\t%d\n", q, b.Bounced[q])
			}
			tw.Flush()
		}
	}
	return 0
}

// cmdSuspend is "gannet suspend -domain D …" and "suspend -list".
func cmdSuspend(args []string, stdout, stderr io.Writer) int {
	const synopsis = "suspend -domain D [-tenant T] [-campaign C] [-site S] [-reason R] [-duration D] | suspend -list  [-api URL] [-key KEY] [-json]"
	fs := newFlags("suspend", synopsis, stderr)
	c := addAPIFlags(fs)
	rf := addRuleFlags(fs, "suspend")
	fs.StringVar(&rf.duration, "duration", "", "how `long` (Go duration or Nd; default 1h, 0: until resumed)")
	list := fs.Bool("list", false, "list the suspensions in force")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	if *list {
		return listRules(c, admin.PathSuspend, "suspend", stdout, stderr)
	}
	if rf.empty() {
		fmt.Fprintln(stderr, "gannet suspend: give at least one of -domain, -tenant, -campaign, -site (or -list)")
		fs.Usage()
		return 2
	}
	var s admin.SuspendV1Response
	ok, err := c.call(stdout, http.MethodPost, admin.PathSuspend, nil, rf.request(), &s)
	if err != nil {
		return fail(stderr, "suspend", err)
	}
	if ok {
		fmt.Fprintf(stdout, "suspension %s in force; resume with: gannet resume %s\n", s.ID, s.ID)
	}
	return 0
}

// cmdResume is "gannet resume ID…" or "gannet resume -domain D …".
func cmdResume(args []string, stdout, stderr io.Writer) int {
	const synopsis = "resume ID... | resume -domain D [-tenant T] [-campaign C] [-site S]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("resume", synopsis, stderr)
	c := addAPIFlags(fs)
	rf := addRuleFlags(fs, "resume")
	ids, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(ids) > 0 == !rf.empty() || rf.reason != "" {
		fmt.Fprintln(stderr, "gannet resume: give suspension ids, or the selector the suspension was made with")
		fs.Usage()
		return 2
	}
	var reqs []admin.CancelRequest
	for _, id := range ids {
		reqs = append(reqs, admin.CancelRequest{ID: id})
	}
	if len(ids) == 0 {
		reqs = []admin.CancelRequest{{Domain: rf.domain, Tenant: rf.tenant, Campaign: rf.campaign, Site: rf.site}}
	}
	status := 0
	for _, req := range reqs {
		var r admin.ResumeV1Response
		ok, err := c.call(stdout, http.MethodDelete, admin.PathSuspend, nil, req, &r)
		if err != nil {
			status = fail(stderr, "resume", err)
			continue
		}
		if ok {
			fmt.Fprintf(stdout, "resumed %s\n", strings.Join(r.Resumed, " "))
		}
	}
	return status
}

// listRules prints the bounces or suspensions in force.
func listRules(c *apiClient, path, name string, stdout, stderr io.Writer) int {
	var rules []admin.RuleEntry
	ok, err := c.call(stdout, http.MethodGet, path, nil, nil, &rules)
	if err != nil {
		return fail(stderr, name, err)
	}
	if !ok {
		return 0
	}
	if len(rules) == 0 {
		fmt.Fprintf(stdout, "No %s in force.\n", map[string]string{"bounce": "bounces", "suspend": "suspensions", "hold": "holds"}[name])
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	count := "HELD"
	if name == "bounce" {
		count = "BOUNCED"
	}
	fmt.Fprintln(tw, "ID\tORIGIN\tDOMAIN\tTENANT\tCAMPAIGN\tSITE\tEXPIRES\tLEFT\t"+count+"\tREASON")
	for _, r := range rules {
		n := r.Held
		if name == "bounce" {
			n = r.TotalBounced
		}
		left, expires := r.Duration, "-"
		if r.Expires == nil {
			left = "until resumed"
			if name == "hold" {
				left = "until released"
			}
		} else {
			expires = r.Expires.UTC().Format(time.RFC3339)
		}
		site := orDash(r.Site)
		if r.Source != "" {
			site += " (source " + r.Source + ")"
		}
		if len(r.IDs) > 0 { // a hold by message ids
			site += " ids: " + strings.Join(r.IDs, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, orDash(r.Origin), orDash(r.Domain), orDash(r.Tenant),
			orDash(r.Campaign), site, expires, left, n, orDash(r.Reason))
	}
	tw.Flush()
	return 0
}
