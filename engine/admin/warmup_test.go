package admin

import (
	"reflect"
	"testing"
)

// TestMergeSummariesWarmup: the cluster's summary adds the counts of the
// warm-up rows of a source and provider over the nodes; the allowance is
// the fleet's, that of the earliest start, and what remains of it is less
// the fleet's count (no limit stays no limit); other rows are kept as
// they are.
func TestMergeSummariesWarmup(t *testing.T) {
	a := QueueSummaryV1{Warmup: []WarmupEntry{
		{Source: "ip1", Provider: "default", Start: "2026-12-02", Day: 1, Allowance: 500, Used: 500, Remaining: 0},
		{Source: "ip1", Provider: "gmail", Start: "2026-12-02", Day: 1, Allowance: 200, Used: 10, Remaining: 190},
	}}
	b := QueueSummaryV1{Warmup: []WarmupEntry{
		{Source: "ip1", Provider: "default", Start: "2026-12-01", Day: 2, Allowance: 1000, Used: 100, Remaining: 900},
		{Source: "ip1", Provider: "gmail", Start: "2026-12-01", Day: 2, Allowance: -1, Used: 7, Remaining: -1},
		{Source: "ip2", Provider: "default", Day: 0, Allowance: 500, Remaining: 500},
	}}
	got := MergeSummaries([]QueueSummaryV1{a, b}).Warmup
	want := []WarmupEntry{
		{Source: "ip1", Provider: "default", Start: "2026-12-01", Day: 2, Allowance: 1000, Used: 600, Remaining: 400},
		{Source: "ip1", Provider: "gmail", Start: "2026-12-01", Day: 2, Allowance: -1, Used: 17, Remaining: -1},
		{Source: "ip2", Provider: "default", Allowance: 500, Remaining: 500},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged warm-up rows:\n%+v\nwant\n%+v", got, want)
	}
}
