package delivery

import (
	"testing"

	"gannet/queue"
)

func item(prio int, n int) *workItem {
	return &workItem{high: prio > 0, ms: &msgState{m: &queue.Message{ID: string(rune('a' + n)), Priority: prio}}}
}

func TestReadyQueueOrder(t *testing.T) {
	var q readyQueue
	// 3 bulk first, then 20 high.
	for i := 0; i < 3; i++ {
		q.push(item(0, i))
	}
	for i := 0; i < 20; i++ {
		q.push(item(1, 3+i))
	}
	var got []int
	for q.len() > 0 {
		got = append(got, q.pop().ms.m.Priority)
	}
	// 8 high, 1 bulk, 8 high, 1 bulk, 4 high, 1 bulk.
	want := []int{1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0}
	if len(got) != len(want) {
		t.Fatalf("got %d items, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	if q.pop() != nil {
		t.Fatal("empty queue returned an item")
	}
}

func TestReadyQueueFIFOWithinLane(t *testing.T) {
	var q readyQueue
	for i := 0; i < 3000; i++ {
		q.push(item(0, i%20))
		if i%3 == 2 {
			q.pop()
		}
	}
	if q.len() != 2000 {
		t.Fatalf("len %d, want 2000", q.len())
	}
	first := q.pop()
	if first.ms.m.ID != string(rune('a'+1000%20)) {
		t.Fatalf("first remaining item %q, want the 1001st pushed", first.ms.m.ID)
	}
}

func BenchmarkReadyQueue(b *testing.B) {
	var q readyQueue
	it := item(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		q.push(it)
		q.pop()
	}
}
