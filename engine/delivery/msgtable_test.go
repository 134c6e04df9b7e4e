package delivery

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMsgTableAgainstMap: loaded (sorted) and enqueued messages, removed
// in random order past several compactions, are found exactly when a
// plain map would find them.
func TestMsgTableAgainstMap(t *testing.T) {
	tab := newMsgTable()
	want := map[string]*msgState{}
	const n = 5000
	tab.growLoaded(n)
	for i := range n {
		ms := &msgState{id: fmt.Sprintf("id%06d", i*2)}
		tab.appendLoaded(ms)
		want[ms.id] = ms
	}
	// Out of order for the slice: goes to the map.
	late := &msgState{id: "id000001"}
	tab.appendLoaded(late)
	want[late.id] = late
	for i := range 300 {
		ms := &msgState{id: fmt.Sprintf("new%04d", i)}
		tab.add(ms)
		want[ms.id] = ms
	}
	if len(tab.byID) != 301 || tab.nLoaded != n {
		t.Fatalf("%d in the map, %d in the slice; want 301, %d", len(tab.byID), tab.nLoaded, n)
	}
	check := func() {
		t.Helper()
		if tab.len() != len(want) {
			t.Fatalf("len %d, want %d", tab.len(), len(want))
		}
		for i := range 2*n + 2 {
			id := fmt.Sprintf("id%06d", i)
			if got := tab.get(id); got != want[id] {
				t.Fatalf("get(%s) = %v, want %v", id, got, want[id])
			}
		}
		seen := 0
		tab.each(func(ms *msgState) {
			if want[ms.id] != ms {
				t.Fatalf("each gave %s, which is not held", ms.id)
			}
			seen++
		})
		if seen != len(want) {
			t.Fatalf("each gave %d, want %d", seen, len(want))
		}
	}
	check()
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i, id := range ids {
		tab.remove(want[id])
		tab.remove(want[id]) // twice: no effect
		delete(want, id)
		if i%700 == 0 || len(want) < 10 {
			check()
		}
	}
	if len(tab.loaded) > 4*fenceStep {
		t.Errorf("slice of %d slots left after removing everything: not compacted", len(tab.loaded))
	}
}

func BenchmarkMsgTableGet(b *testing.B) {
	tab := newMsgTable()
	const n = 1 << 20
	tab.growLoaded(n)
	for i := range n {
		tab.appendLoaded(&msgState{id: fmt.Sprintf("%020d", i)})
	}
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("%020d", rand.IntN(n))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if tab.get(ids[i%len(ids)]) == nil {
			b.Fatal("not found")
		}
		i++
	}
}
