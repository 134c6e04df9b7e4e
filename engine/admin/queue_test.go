package admin

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/queue"
)

// TestQueueListEndpoint: filters, paging, group-by, tenant scope, and 422
// for bad filters.
func TestQueueListEndpoint(t *testing.T) {
	w := newWorld(t)
	a1 := w.queueMail(t, "acme", "spring", "a@x.test")
	a2 := w.queueMail(t, "acme", "", "b@y.test", "c@x.test")
	o1 := w.queueMail(t, "other", "", "d@x.test")
	tenantAddr := "192.0.2.9:5000"
	for _, q := range []string{"state=bogus", "group_by=color", "min_attempts=-1", "limit=0", "older=yesterday", "nope=1", "since=1h"} {
		if got := w.call(t, "GET", PathQueue+"?"+q, "", "", "", nil); got != 422 {
			t.Errorf("%s: %d, want 422", q, got)
		}
	}
	var l QueueListV1
	if code := w.call(t, "GET", PathQueue+"?domain=x.test", "", "", "", &l); code != 200 || l.Matched != 3 || len(l.Messages) != 3 {
		t.Fatalf("domain: %d %+v", code, l)
	}
	l = QueueListV1{}
	w.call(t, "GET", PathQueue+"?limit=2", "", "", "", &l)
	if len(l.Messages) != 2 || l.Next != a2 || l.Messages[0].ID != a1 || l.Messages[0].State != "scheduled" {
		t.Fatalf("page 1: %+v", l)
	}
	l = QueueListV1{}
	w.call(t, "GET", PathQueue+"?limit=2&after="+url.QueryEscape(a2), "", "", "", &l)
	if len(l.Messages) != 1 || l.Messages[0].ID != o1 || l.Next != "" {
		t.Fatalf("page 2: %+v", l)
	}
	l = QueueListV1{}
	w.call(t, "GET", PathQueue+"?group_by=domain", "", "key-acme", tenantAddr, &l)
	if len(l.Groups) != 2 || l.Groups[0] != (GroupCount{"x.test", 2, 2}) || l.Groups[1] != (GroupCount{"y.test", 1, 1}) {
		t.Fatalf("tenant group by domain: %+v", l)
	}
	if got := w.call(t, "GET", PathQueue+"?tenant=other", "", "key-acme", tenantAddr, nil); got != 403 {
		t.Errorf("another tenant: %d", got)
	}

	// Actions.
	if got := w.call(t, "POST", PathQueueDelete, `{}`, "", "", nil); got != 422 {
		t.Errorf("delete of everything: %d", got)
	}
	if got := w.call(t, "POST", PathQueueDelete, `{"ids":["`+o1+`"]}`, "key-acme", tenantAddr, nil); got != 404 {
		t.Errorf("delete of another tenant's id: %d", got)
	}
	var res QueueActionV1Response
	if code := w.call(t, "POST", PathQueueDelete, `{"domain":"x.test","tenant":"other"}`, "", "", &res); code != 200 || res.Messages != 1 {
		t.Fatalf("delete by filter: %d %+v", code, res)
	}
	res = QueueActionV1Response{}
	if code := w.call(t, "POST", PathQueueBounce, `{"ids":["`+a1+`"],"reason":"spam"}`, "key-acme", tenantAddr, &res); code != 200 || res.Recipients != 1 {
		t.Fatalf("bounce by id: %d %+v", code, res)
	}
	if d := w.rec.ofType(logrec.AdminDelete); len(d) != 1 || d[0].Recipient != "d@x.test" {
		t.Errorf("AdminDelete records %+v", d)
	}
	if b := w.rec.ofType(logrec.AdminBounce); len(b) != 1 || !strings.Contains(b[0].Response.Content, "spam") {
		t.Errorf("AdminBounce records %+v", b)
	}
	l = QueueListV1{}
	w.call(t, "GET", PathQueue, "", "", "", &l)
	if l.Matched != 1 || l.Messages[0].ID != a2 {
		t.Fatalf("after actions: %+v", l)
	}
}

// TestDeadLettersEndpoint: list, show with body, requeue into the queue,
// purge; a tenant sees its own only.
func TestDeadLettersEndpoint(t *testing.T) {
	w := newWorld(t)
	var ids []string
	for i, tenant := range []string{"acme", "acme", "other"} {
		m := &queue.Message{ID: w.ids.Next(), From: "app@src.test", Tenant: tenant, Created: time.Now().Add(-time.Hour),
			Attempts: 4, Recipients: []queue.Recipient{{Addr: []string{"a@x.test", "b@y.test", "c@x.test"}[i], State: queue.Expired, Attempts: 4, LastReply: "451 4.3.0 later"}}}
		if err := w.spool.Append(m, []byte("Subject: dead\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := w.spool.MoveToDead(m, time.Now()); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	tenantAddr := "192.0.2.9:5000"
	var sum QueueSummaryV1
	if w.call(t, "GET", PathQueueSummary, "", "", "", &sum); sum.Totals.Dead != 3 || sum.Totals.Messages != 0 {
		t.Errorf("summary totals %+v", sum.Totals)
	}
	if got := w.call(t, "GET", PathInspectMessage+"?id="+ids[0], "", "", "", nil); got != 404 {
		t.Errorf("inspect of a dead letter: %d", got)
	}
	var l QueueListV1
	if code := w.call(t, "GET", PathDeadLetters+"?domain=x.test&since=1h", "", "", "", &l); code != 200 || l.Matched != 2 || l.Messages[0].State != "dead" || l.Messages[0].Died == nil {
		t.Fatalf("list: %d %+v", code, l)
	}
	l = QueueListV1{}
	if code := w.call(t, "GET", PathQueue+"?state=dead", "", "key-acme", tenantAddr, &l); code != 200 || l.Matched != 2 {
		t.Fatalf("queue list state=dead for a tenant: %d %+v", code, l)
	}
	l = QueueListV1{}
	w.call(t, "GET", PathDeadLetters+"?group_by=tenant", "", "", "", &l)
	if len(l.Groups) != 2 || l.Groups[0] != (GroupCount{"acme", 2, 2}) {
		t.Fatalf("group by tenant: %+v", l)
	}
	var show ListedMessage
	if code := w.call(t, "GET", PathDeadLetters+"?id="+ids[0]+"&body=1", "", "", "", &show); code != 200 || show.Data == nil ||
		!strings.Contains(*show.Data, "Subject: dead") || show.Recipients[0].State != "expired" {
		t.Fatalf("show: %d %+v", code, show)
	}
	if got := w.call(t, "GET", PathDeadLetters+"?id="+ids[2], "", "key-acme", tenantAddr, nil); got != 404 {
		t.Errorf("show of another tenant's: %d", got)
	}
	if got := w.call(t, "POST", PathDeadLetters, `{}`, "", "", nil); got != 422 {
		t.Errorf("requeue of nothing: %d", got)
	}
	var res DeadLetterV1Response
	if code := w.call(t, "POST", PathDeadLetters, `{"ids":["`+ids[0]+`"]}`, "", "", &res); code != 200 || res.Count != 1 {
		t.Fatalf("requeue: %d %+v", code, res)
	}
	// Requeued: attempted again (the transport defers it), with fresh counters.
	waitUntil(t, func() bool { return w.tr.count() == 1 })
	if m, err := w.spool.DeadLetter(ids[0]); err == nil {
		t.Fatalf("still a dead letter: %+v", m)
	}
	res = DeadLetterV1Response{}
	if code := w.call(t, "DELETE", PathDeadLetters, `{"domain":"x.test"}`, "key-acme", tenantAddr, &res); code != 200 || res.Count != 0 {
		t.Fatalf("tenant purge (nothing of acme left at x.test): %d %+v", code, res)
	}
	res = DeadLetterV1Response{}
	if code := w.call(t, "DELETE", PathDeadLetters, `{"tenant":"other"}`, "", "", &res); code != 200 || res.Count != 1 {
		t.Fatalf("purge: %d %+v", code, res)
	}
	if st := w.spool.Stats(); st.Dead != 1 {
		t.Fatalf("dead left: %+v", st)
	}
}
