package delivery

import (
	"time"

	"gannet/engine/outbound"
)

// highBurst is how many high-priority items a site's ready queue hands out
// in a row while bulk items wait; then one bulk item goes, so that a steady
// stream of transactional mail delays bulk mail but never starves it.
const highBurst = 8

// fifo is a queue of work items backed by a slice that is compacted as it
// drains.
type fifo struct {
	items []*workItem
	head  int
}

func (f *fifo) len() int { return len(f.items) - f.head }

func (f *fifo) push(it *workItem) { f.items = append(f.items, it) }

func (f *fifo) pop() *workItem {
	if f.head == len(f.items) {
		return nil
	}
	it := f.items[f.head]
	f.items[f.head] = nil
	f.head++
	if f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	} else if f.head >= 1024 && f.head*2 >= len(f.items) {
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return it
}

// readyQueue is the queue of one path (egress source, site): work items
// whose destination resolved to that site and that wait for one of the
// path's workers. It has two lanes, high priority (transactional) and bulk.
type readyQueue struct {
	path      outbound.Path // its Domain: the last domain routed here, for the shaping lookup
	high      fifo
	bulk      fifo
	streak    int       // high items handed out in a row while bulk waited
	workers   int       // goroutines delivering for this path
	inFlight  int       // items a worker has taken (held or in a transaction)
	idleSince time.Time // when the last worker left an empty queue
}

func (q *readyQueue) len() int { return q.high.len() + q.bulk.len() }

func (q *readyQueue) push(it *workItem) {
	if it.high {
		q.high.push(it)
	} else {
		q.bulk.push(it)
	}
}

// pop returns the next item: high priority first, except that after
// highBurst high items in a row one waiting bulk item goes.
func (q *readyQueue) pop() *workItem {
	if q.high.len() > 0 && (q.streak < highBurst || q.bulk.len() == 0) {
		if q.bulk.len() > 0 {
			q.streak++
		}
		return q.high.pop()
	}
	q.streak = 0
	return q.bulk.pop()
}
