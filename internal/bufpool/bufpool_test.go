package bufpool

import (
	"runtime"
	"testing"
)

func TestGetHasRoom(t *testing.T) {
	var p Pool
	for _, n := range []int{0, 1, 100, MinSize - 1, MinSize, MinSize + 1, 100 << 10, MaxSize - 1, MaxSize, MaxSize + 1, 3 << 20} {
		b := p.Get(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(b), cap(b))
		}
		p.Put(append(b, 'x'))
	}
}

// A buffer that comes back from the pool is empty and has at least the room
// asked for, whatever capacity it was put back with.
func TestPutThenGetKeepsPromise(t *testing.T) {
	var p Pool
	odd := make([]byte, 10, 6000) // between the 4 KiB and 8 KiB classes
	p.Put(odd)
	for range 100 {
		b := p.Get(5000)
		if len(b) != 0 || cap(b) < 5000 {
			t.Fatalf("Get(5000) after Put(cap 6000): len %d cap %d", len(b), cap(b))
		}
		got := p.Get(4096)
		if cap(got) < 4096 {
			t.Fatalf("Get(4096): cap %d", cap(got))
		}
		p.Put(got)
	}
}

func TestReuse(t *testing.T) {
	var p Pool
	// Pools are per P; pin to one to see the reuse deterministically.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := p.Get(100 << 10)
	b = append(b, "hello"...)
	first := &b[:1][0]
	p.Put(b)
	c := p.Get(90 << 10)
	if len(c) != 0 {
		t.Fatalf("reused buffer not empty: %d", len(c))
	}
	if &c[:1][0] != first {
		t.Skip("sync.Pool dropped the buffer (a GC ran); reuse not observable")
	}
}

func TestTooSmallAndTooLargeNotKept(t *testing.T) {
	var p Pool
	p.Put(make([]byte, 0, 100))
	p.Put(make([]byte, 0, 4<<20))
	for c := range p.classes {
		if v := p.classes[c].Get(); v != nil {
			t.Fatalf("class %d kept a buffer", c)
		}
	}
}

// BenchmarkGetPut: a buffer out and back, without an allocation.
func BenchmarkGetPut(b *testing.B) {
	var p Pool
	b.ReportAllocs()
	for b.Loop() {
		buf := p.Get(2100)
		buf = append(buf, "Subject: x\r\n\r\nbody\r\n"...)
		p.Put(buf)
	}
}

func BenchmarkMake(b *testing.B) {
	b.ReportAllocs()
	var sink []byte
	for b.Loop() {
		buf := make([]byte, 0, 4096)
		sink = append(buf, "Subject: x\r\n\r\nbody\r\n"...)
	}
	_ = sink
}

// TestPutAllocatesNothing: once a buffer is kept, getting it and giving it
// back allocate nothing (a GC that empties the pool between runs costs a
// new buffer now and then, hence the average).
func TestPutAllocatesNothing(t *testing.T) {
	var p Pool
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if n := testing.AllocsPerRun(1000, func() { p.Put(p.Get(2100)) }); n > 0.1 {
		t.Fatalf("%.2f allocations per Get and Put, want none", n)
	}
}
