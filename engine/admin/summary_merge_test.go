package admin

import (
	"reflect"
	"testing"
	"time"
)

// TestMergeSummaries: two nodes' summaries add up row by row, rows only
// one node has are kept, a suspension on either node shows, shared rule
// counts are not doubled, and node-local quarantine ids are left out.
func TestMergeSummaries(t *testing.T) {
	a := QueueSummaryV1{
		Totals:     Totals{Messages: 3, Counts: Counts{Recipients: 4, Scheduled: 3, Ready: 1}, Suspensions: 1, Corrupt: 1, Dead: 2},
		Queues:     []QueueRow{{Name: "d.example", Domain: "d.example", Messages: 3, Counts: Counts{Recipients: 4, Scheduled: 3, Ready: 1}, EffectiveRate: 5}},
		Domains:    []DomainRow{{Domain: "d.example", Messages: 3, Counts: Counts{Recipients: 4}, EffectiveRate: 5}},
		Tenants:    []GroupRow{{Name: "acme", Counts: Counts{Recipients: 4}}},
		Sites:      []SiteRow{{Site: "mx.d.example", Connections: 2, EffectiveRate: 5, Ready: 1}},
		CorruptIDs: []string{"x1"},
	}
	b := QueueSummaryV1{
		Totals: Totals{Messages: 2, Counts: Counts{Recipients: 2, Held: 2}, Suspensions: 1, Dead: 1},
		Queues: []QueueRow{
			{Name: "d.example", Domain: "d.example", Messages: 1, Counts: Counts{Recipients: 1, Held: 1}, EffectiveRate: 5, Suspended: true},
			{Name: "e.example", Domain: "e.example", Messages: 1, Counts: Counts{Recipients: 1, Held: 1}},
		},
		Domains: []DomainRow{{Domain: "e.example", Messages: 1, Counts: Counts{Recipients: 1}}, {Domain: "d.example", Messages: 1, Counts: Counts{Recipients: 1}, EffectiveRate: 5, Suspended: true}},
		Tenants: []GroupRow{{Name: "acme", Counts: Counts{Recipients: 2}}},
		Sites:   []SiteRow{{Site: "mx.d.example", Connections: 2, EffectiveRate: 5, Backoff: true}, {Site: "mx.d.example", Source: "ip2", Connections: 1}},
		Backoff: []BackoffEntry{{Site: "mx.d.example", Reason: "421 slow down"}},
	}
	a.Backoff = []BackoffEntry{{Site: "mx.d.example", Reason: "421 slow down"}}
	got := MergeSummaries([]QueueSummaryV1{a, b})
	want := QueueSummaryV1{
		Totals: Totals{Messages: 5, Counts: Counts{Recipients: 6, Scheduled: 3, Ready: 1, Held: 2}, Suspensions: 1, Corrupt: 1, Dead: 3},
		Queues: []QueueRow{
			{Name: "d.example", Domain: "d.example", Messages: 4, Counts: Counts{Recipients: 5, Scheduled: 3, Ready: 1, Held: 1}, EffectiveRate: 10, Suspended: true},
			{Name: "e.example", Domain: "e.example", Messages: 1, Counts: Counts{Recipients: 1, Held: 1}},
		},
		Domains:   []DomainRow{{Domain: "d.example", Messages: 4, Counts: Counts{Recipients: 5}, EffectiveRate: 10, Suspended: true}, {Domain: "e.example", Messages: 1, Counts: Counts{Recipients: 1}}},
		Tenants:   []GroupRow{{Name: "acme", Counts: Counts{Recipients: 6}}},
		Campaigns: []GroupRow{},
		Sites:     []SiteRow{{Site: "mx.d.example", Connections: 4, EffectiveRate: 10, Ready: 1, Backoff: true}, {Site: "mx.d.example", Source: "ip2", Connections: 1}},
		Backoff:   []BackoffEntry{{Site: "mx.d.example", Reason: "421 slow down"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n%+v\nwant:\n%+v", got, want)
	}
	// The inputs are not changed by the merge.
	if a.Queues[0].Messages != 3 || b.Sites[0].Connections != 2 {
		t.Errorf("inputs modified: %+v %+v", a.Queues[0], b.Sites[0])
	}
	if one := MergeSummaries([]QueueSummaryV1{a}); one.Totals != a.Totals || len(one.CorruptIDs) != 0 || len(one.Backoff) != 1 {
		t.Errorf("one node: %+v", one)
	}
}

// TestMergeSummariesTuned: each node tunes its own share of a site: the
// learned rates add up, in the tuned list and the site rows, and the
// latest change says why.
func TestMergeSummariesTuned(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := QueueSummaryV1{Sites: []SiteRow{{Site: "mx.d.example", TunedRate: 9, TuneReason: "old"}},
		Tuned: []TuneEntry{{Site: "mx.d.example", Rate: 9, Reason: "old", Changed: t0}}}
	b := QueueSummaryV1{Sites: []SiteRow{{Site: "mx.d.example", TunedRate: 11, TuneReason: "new"}},
		Tuned: []TuneEntry{{Site: "mx.d.example", Rate: 11, Throttled: 13, Reason: "new", Changed: t0.Add(time.Minute)},
			{Site: "mx.e.example", Rate: 2, Reason: "e", Changed: t0}}}
	got := MergeSummaries([]QueueSummaryV1{a, b})
	want := []TuneEntry{{Site: "mx.d.example", Rate: 20, Throttled: 13, Reason: "new", Changed: t0.Add(time.Minute)},
		{Site: "mx.e.example", Rate: 2, Reason: "e", Changed: t0}}
	if !reflect.DeepEqual(got.Tuned, want) {
		t.Errorf("merged tuned:\n%+v\nwant:\n%+v", got.Tuned, want)
	}
	if len(got.Sites) != 1 || got.Sites[0].TunedRate != 20 {
		t.Errorf("merged sites %+v, want one row with tuned_rate 20", got.Sites)
	}
	if a.Tuned[0].Rate != 9 {
		t.Errorf("input modified: %+v", a.Tuned[0])
	}
}
