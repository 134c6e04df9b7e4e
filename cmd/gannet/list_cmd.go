package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gannet/engine/admin"
)

// listFlags are the filters of "gannet queue list" and of the queue
// actions on a filter (queue bounce, queue delete), and "gannet dead".
type listFlags struct {
	sender, recipient, older, state, after, groupBy, since string
	minAttempts, limit                                     int
	yes                                                    bool
}

func addListFlags(fs *flag.FlagSet) *listFlags {
	f := &listFlags{}
	fs.StringVar(&f.sender, "sender", "", "list, bounce, delete: mail from this envelope `sender`")
	fs.StringVar(&f.recipient, "recipient", "", "list, bounce, delete: mail with a pending recipient containing this `text`")
	fs.IntVar(&f.minAttempts, "min-attempts", 0, "list, bounce, delete: mail with at least `N` delivery attempts")
	fs.StringVar(&f.older, "older", "", "list, bounce, delete: mail received at least this `long` ago (1h, 2d)")
	fs.StringVar(&f.state, "state", "", "list, bounce, delete: scheduled, ready, suspended, held (list: also dead)")
	fs.IntVar(&f.limit, "limit", 100, "list: messages per page")
	fs.StringVar(&f.after, "after", "", "list: the page after this `cursor` (the last page's next)")
	fs.StringVar(&f.groupBy, "group-by", "", "list: counts by domain, site, tenant, campaign or sender")
	fs.BoolVar(&f.yes, "yes", false, "delete, purge: do not ask for confirmation")
	return f
}

// query returns the list's query parameters.
func (f *listFlags) query(sel *ruleFlags) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("domain", sel.domain)
	set("site", sel.site)
	set("tenant", sel.tenant)
	set("campaign", sel.campaign)
	set("sender", f.sender)
	set("recipient", f.recipient)
	set("older", f.older)
	set("state", f.state)
	set("after", f.after)
	set("group_by", f.groupBy)
	set("since", f.since)
	if f.minAttempts != 0 {
		q.Set("min_attempts", strconv.Itoa(f.minAttempts))
	}
	if f.limit != 100 {
		q.Set("limit", strconv.Itoa(f.limit))
	}
	return q
}

// filtered reports whether a filter beyond the selector is given.
func (f *listFlags) filtered() bool {
	return f.sender != "" || f.recipient != "" || f.minAttempts != 0 || f.older != "" || f.state != ""
}

// queueList is "gannet queue list" (GET /api/admin/queue/v1).
func queueList(c *apiClient, lf *listFlags, sel *ruleFlags, stdout, stderr io.Writer) int {
	var l admin.QueueListV1
	ok, err := c.call(stdout, http.MethodGet, admin.PathQueue, lf.query(sel), nil, &l)
	if err != nil {
		return fail(stderr, "queue list", err)
	}
	if ok {
		printList(stdout, &l)
	}
	return 0
}

// printList prints a page of messages, or the groups.
func printList(w io.Writer, l *admin.QueueListV1) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if l.GroupBy != "" {
		fmt.Fprintf(tw, "%s\tMESSAGES\tRECIPIENTS\n", strings.ToUpper(l.GroupBy))
		for _, g := range l.Groups {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", orDash(g.Key), g.Messages, g.Recipients)
		}
		tw.Flush()
		fmt.Fprintf(w, "%d message(s)\n", l.Matched)
		return
	}
	fmt.Fprintln(tw, "ID\tSTATE\tSENDER\tTENANT\tCAMPAIGN\tCREATED\tATTEMPTS\tRECIPIENTS\tLAST-REPLY")
	for _, m := range l.Messages {
		var rcpts []string
		last := ""
		for _, r := range m.Recipients {
			rcpts = append(rcpts, r.Email)
			if r.LastReply != "" {
				last = r.LastReply
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.State, orDash(m.Sender), orDash(m.Tenant),
			orDash(m.Campaign), m.Created.Local().Format(time.RFC3339), m.NumAttempts, strings.Join(rcpts, ","), orDash(last))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d message(s) shown of %d matching", len(l.Messages), l.Matched)
	if l.Next != "" {
		fmt.Fprintf(w, "; next page: -after %s", l.Next)
	}
	fmt.Fprintln(w)
}

// confirm asks on stderr and reads the answer from stdin: only "y" or
// "yes" goes on.
func confirm(stderr io.Writer, question string) bool {
	fmt.Fprintf(stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// queueAct is "gannet queue bounce|delete ID…|filters" (POST
// /api/admin/queue/v1/bounce or /delete).
func queueAct(c *apiClient, fs *flag.FlagSet, action string, ids []string, lf *listFlags, sel *ruleFlags, stdout, stderr io.Writer) int {
	name := "queue " + action
	named := !sel.empty() || lf.filtered()
	if len(ids) > 0 == named {
		fmt.Fprintf(stderr, "gannet %s: give message ids, or filters (-domain, -tenant, -campaign, -site, -sender, -recipient, -min-attempts, -older, -state)\n", name)
		fs.Usage()
		return 2
	}
	req := admin.QueueActionRequest{IDs: ids, Domain: sel.domain, Site: sel.site, Tenant: sel.tenant, Campaign: sel.campaign,
		Sender: lf.sender, Recipient: lf.recipient, MinAttempts: lf.minAttempts, Older: lf.older, State: lf.state, Reason: sel.reason}
	if action == "delete" && !lf.yes {
		what := fmt.Sprintf("%d message(s)", len(ids))
		if named {
			q := lf.query(sel)
			q.Set("limit", "1")
			q.Del("after")
			q.Del("group_by")
			var l admin.QueueListV1
			quiet := *c
			quiet.json = false
			if _, err := quiet.call(stdout, http.MethodGet, admin.PathQueue, q, nil, &l); err != nil {
				return fail(stderr, name, err)
			}
			what = fmt.Sprintf("%d message(s)", l.Matched)
		}
		if !confirm(stderr, "Delete "+what+" without a bounce?") {
			fmt.Fprintf(stderr, "gannet %s: nothing deleted\n", name)
			return 1
		}
	}
	path := admin.PathQueueBounce
	if action == "delete" {
		path = admin.PathQueueDelete
	}
	var r admin.QueueActionV1Response
	ok, err := c.call(stdout, http.MethodPost, path, nil, req, &r)
	if err != nil {
		return fail(stderr, name, err)
	}
	if ok {
		verb := map[string]string{"bounce": "bounced", "delete": "deleted"}[action]
		fmt.Fprintf(stdout, "%s %d message(s), %d recipient(s)\n", verb, r.Messages, r.Recipients)
	}
	return 0
}

// cmdDead is "gannet dead list|show|requeue|purge".
func cmdDead(args []string, stdout, stderr io.Writer) int {
	const synopsis = "dead list [-domain D] [-tenant T] [-campaign C] [-since 24h] [-limit N] [-after CURSOR] [-group-by K] | dead show ID [-body] | dead requeue ID...|-domain D... | dead purge ID...|-domain D... [-yes]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("dead", synopsis, stderr)
	c := addAPIFlags(fs)
	sel := &ruleFlags{}
	fs.StringVar(&sel.domain, "domain", "", "dead letters with a recipient at this `domain`")
	fs.StringVar(&sel.tenant, "tenant", "", "dead letters of this `tenant`")
	fs.StringVar(&sel.campaign, "campaign", "", "dead letters of this `campaign`")
	lf := &listFlags{}
	fs.StringVar(&lf.since, "since", "", "dead letters that died at most this `long` ago (24h, 2d)")
	fs.IntVar(&lf.limit, "limit", 100, "list: dead letters per page")
	fs.StringVar(&lf.after, "after", "", "list: the page after this `cursor`")
	fs.StringVar(&lf.groupBy, "group-by", "", "list: counts by domain, tenant, campaign or sender")
	fs.BoolVar(&lf.yes, "yes", false, "purge: do not ask for confirmation")
	body := fs.Bool("body", false, "show: also print the message as spooled")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) == 0 {
		fs.Usage()
		return 2
	}
	switch pos[0] {
	case "list":
		if len(pos) != 1 {
			break
		}
		var l admin.QueueListV1
		ok, err := c.call(stdout, http.MethodGet, admin.PathDeadLetters, lf.query(sel), nil, &l)
		if err != nil {
			return fail(stderr, "dead list", err)
		}
		if ok {
			printList(stdout, &l)
		}
		return 0
	case "show":
		if len(pos) != 2 {
			break
		}
		return deadShow(c, pos[1], *body, stdout, stderr)
	case "requeue", "purge":
		ids := pos[1:]
		named := !sel.empty() || lf.since != ""
		if len(ids) > 0 == named {
			fmt.Fprintf(stderr, "gannet dead %s: give dead-letter ids, or at least one of -domain, -tenant, -campaign\n", pos[0])
			fs.Usage()
			return 2
		}
		req := admin.DeadLetterRequest{IDs: ids, Domain: sel.domain, Tenant: sel.tenant, Campaign: sel.campaign, Since: lf.since}
		method := http.MethodPost
		if pos[0] == "purge" {
			method = http.MethodDelete
			if !lf.yes && !confirm(stderr, "Purge the dead letters named for good?") {
				fmt.Fprintln(stderr, "gannet dead purge: nothing purged")
				return 1
			}
		}
		var r admin.DeadLetterV1Response
		ok, err := c.call(stdout, method, admin.PathDeadLetters, nil, req, &r)
		if err != nil {
			return fail(stderr, "dead "+pos[0], err)
		}
		if ok {
			verb := map[string]string{"requeue": "requeued", "purge": "purged"}[pos[0]]
			fmt.Fprintf(stdout, "%s %d dead letter(s) %s\n", verb, r.Count, strings.Join(r.IDs, " "))
		}
		return 0
	}
	fs.Usage()
	return 2
}

// deadShow is "gannet dead show ID [-body]".
func deadShow(c *apiClient, id string, body bool, stdout, stderr io.Writer) int {
	q := url.Values{"id": {id}}
	if body {
		q.Set("body", "1")
	}
	var m admin.ListedMessage
	ok, err := c.call(stdout, http.MethodGet, admin.PathDeadLetters, q, nil, &m)
	if err != nil {
		return fail(stderr, "dead show", err)
	}
	if !ok {
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	died := "-"
	if m.Died != nil {
		died = m.Died.Local().Format(time.RFC3339)
	}
	for _, kv := range [][2]string{{"ID", m.ID}, {"Sender", orDash(m.Sender)}, {"Created", m.Created.Local().Format(time.RFC3339)},
		{"Died", died}, {"Size", strconv.Itoa(m.Size) + " bytes"}, {"Tenant", orDash(m.Tenant)},
		{"Campaign", orDash(m.Campaign)}, {"Attempts", strconv.Itoa(m.NumAttempts)}} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "RECIPIENT\tSTATE\tATTEMPTS\tLAST-REPLY")
	for _, r := range m.Recipients {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Email, r.State, r.Attempts, orDash(r.LastReply))
	}
	tw.Flush()
	if m.Data != nil {
		fmt.Fprintln(stdout)
		io.WriteString(stdout, *m.Data)
	}
	return 0
}
