package console

import (
	"fmt"
	"testing"
	"time"

	"gannet/engine/logrec"
)

func TestRecentDestinations(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 30, 0, time.UTC)
	r := NewRecent(func() time.Time { return now })
	for i := range 8 {
		r.Record(record(logrec.TransientFailure, fmt.Sprint("m", i), "a@d.test", "mx.d.test", 451, fmt.Sprint("later ", i), now))
	}
	for i := range 24 {
		r.Record(record(logrec.Delivery, fmt.Sprint("ok", i), "b@d.test", "mx.d.test", 250, "ok", now))
	}
	st := r.Site("mx.d.test")
	if st.Attempts != 32 || st.Deferral != 0.25 {
		t.Errorf("attempts %d deferral %v, want 32 and 0.25", st.Attempts, st.Deferral)
	}
	if st.Rate != 24.0/90 { // 24 over the previous minute and 30 s of this one
		t.Errorf("rate %v", st.Rate)
	}
	if len(st.Errors) != LastErrors || st.Errors[0].Reply != "451 later 7" || st.Errors[LastErrors-1].Reply != "451 later 3" {
		t.Errorf("last errors %+v, want the last %d, newest first", st.Errors, LastErrors)
	}
	if d := r.Domain("d.test"); d.Attempts != 32 || len(d.Errors) != LastErrors {
		t.Errorf("domain stats %+v", d)
	}
	// Two minutes later the rates are those of nothing.
	now = now.Add(2 * time.Minute)
	if st := r.Site("mx.d.test"); st.Attempts != 0 || st.Rate != 0 || len(st.Errors) != LastErrors {
		t.Errorf("stats of an idle site %+v (the errors stay)", st)
	}
}

func TestRecentRecordsAreBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	r := NewRecent(func() time.Time { return now })
	for i := range RecentRecords + 10 {
		r.Record(record(logrec.Delivery, fmt.Sprint("m", i), fmt.Sprintf("u%d@d.test", i), "mx.d.test", 250, "ok", now))
	}
	if got := r.ForMessage("m5"); len(got) != 0 {
		t.Errorf("the oldest records are still kept: %+v", got)
	}
	if got := r.ForMessage(fmt.Sprint("m", RecentRecords+9)); len(got) != 1 {
		t.Errorf("the newest record is not kept")
	}
	got := r.Search(Filter{Recipient: "U81"}, 100)
	if len(got) == 0 || got[0].Recipient != "u8199@d.test" {
		t.Errorf("search, newest first: %+v", got[:min(3, len(got))])
	}
	if got := r.Search(Filter{Tenant: "acme", Campaign: "spring"}, 7); len(got) != 7 {
		t.Errorf("search limited to 7: %d", len(got))
	}
	if got := r.Search(Filter{Tenant: "other"}, 7); len(got) != 0 {
		t.Errorf("search by another tenant: %d", len(got))
	}
}

func TestRecentLatencyAndGroups(t *testing.T) {
	now := time.Unix(1e9, 0)
	r := NewRecent(func() time.Time { return now })
	for i := 1; i <= 100; i++ {
		rec := record(logrec.Delivery, "m", "a@d.test", "s", 250, "ok", now)
		rec.Created = now.Add(-time.Duration(i) * time.Second)
		r.Record(rec)
	}
	if p50, p95 := r.TakeLatency(); p50 != 51 || p95 != 96 {
		t.Errorf("p50 %v p95 %v", p50, p95)
	}
	if p50, p95 := r.TakeLatency(); p50 != 0 || p95 != 0 {
		t.Errorf("a new interval without deliveries: %v %v", p50, p95)
	}
	b := record(logrec.Bounce, "m", "a@d.test", "s", 550, "no such user", now)
	b.BounceClassification = "InvalidRecipient"
	r.Record(b)
	r.Record(record(logrec.Reception, "m", "a@d.test", "", 250, "ok", now))
	// Reports that came back: counted when matched to the tenant's mail.
	for _, matched := range []bool{true, true, false} {
		fb := record(logrec.Feedback, "m", "a@d.test", "", 0, "", now)
		fb.Report = &logrec.Report{Matched: matched, FeedbackType: "abuse"}
		r.Record(fb)
	}
	oob := record(logrec.OOB, "m", "a@d.test", "", 550, "gone", now)
	oob.Report = &logrec.Report{Matched: true, Action: "failed"}
	r.Record(oob)
	tenants, campaigns := r.Groups()
	if g := tenants["acme"]; g.Complaints != 2 || g.LateBounces != 1 {
		t.Errorf("tenant reports: %d complaints, %d late bounces; want 2, 1", g.Complaints, g.LateBounces)
	}
	if g := tenants["acme"]; g.Delivered != 100 || g.Bounced != 1 || g.Received != 1 || g.ByClass["InvalidRecipient"] != 1 {
		t.Errorf("tenant counts %+v", g)
	}
	if g := campaigns["spring"]; g.Delivered != 100 {
		t.Errorf("campaign counts %+v", g)
	}
}
