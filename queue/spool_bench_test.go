package queue

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reportAppend adds appends/s and fsyncs per message to a benchmark.
func reportAppend(b *testing.B, s *Spool, start time.Time) {
	el := time.Since(start)
	st := s.Stats()
	if st.Appends == 0 {
		return
	}
	b.ReportMetric(float64(st.Appends)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(st.SegmentSyncs)/float64(st.Appends), "seg-fsyncs/msg")
	// Each group also commits one synced index batch; Pebble may fold
	// several groups into one WAL fsync, so this is an upper bound.
	b.ReportMetric(float64(st.Groups)/float64(st.Appends), "index-commits/msg")
	if st.OutcomeSyncs > 0 {
		b.ReportMetric(float64(st.OutcomeSyncs)/float64(st.Appends), "outcome-syncs/msg")
	}
}

// BenchmarkAppend1 is one writer on a real disk (t.TempDir): every append
// pays a full segment fsync and an index fsync (at the same time).
func BenchmarkAppend1(b *testing.B) {
	s := openTest(b, Options{})
	body := testMail(1, 4000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		if err := s.Append(testMessage(fmt.Sprintf("a%09d", i), 1), body); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportAppend(b, s, start)
}

// cpuTime is the CPU time (user and system) this process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppend100K is 16 concurrent writers of 100 KB newsletters (the
// (c) shape of bench/run.sh) with each setting: s2 stores them as they
// are (codecFor). Besides the time, which the fsyncs set, it reports the
// process's CPU time per message and the segment bytes per message.
func BenchmarkAppend100K(b *testing.B) {
	for _, comp := range []string{"zstd", "s2", "none"} {
		b.Run(comp, func(b *testing.B) {
			s := openTest(b, Options{Compression: comp})
			bodies := make([][]byte, 8)
			for i := range bodies {
				bodies[i] = testMail(uint64(i), 100<<10)
			}
			b.SetBytes(int64(len(bodies[0])))
			b.ReportAllocs()
			b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			var n, stored atomic.Int64
			cpu0 := cpuTime(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					m := testMessage(fmt.Sprintf("c%09d", i), 1)
					if err := s.Append(m, bodies[i%int64(len(bodies))]); err != nil {
						b.Error(err)
						return
					}
					stored.Add(m.Length)
				}
			})
			if k := n.Load(); k > 0 {
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(k), "cpu-µs/msg")
				b.ReportMetric(float64(stored.Load())/float64(k), "stored-B/msg")
			}
		})
	}
}

// BenchmarkAppend64 is 64 concurrent writers sharing group commits.
func BenchmarkAppend64(b *testing.B) { appendParallel(b, false) }

// appendParallel runs 64 concurrent writers that append messages and, with
// remove, remove each again at once.
func appendParallel(b *testing.B, remove bool) {
	s := openTest(b, Options{})
	body := testMail(1, 4000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var n atomic.Int64
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("p%09d", n.Add(1))
			if err := s.Append(testMessage(id, 1), body); err != nil {
				b.Error(err)
				return
			}
			if !remove {
				continue
			}
			if err := s.Remove(id); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportAppend(b, s, start)
}

// BenchmarkBody reads bodies back for delivery (pread, CRC, decompress):
// 4 KB mail, and 100 KB mail with each setting.
func BenchmarkBody(b *testing.B) {
	for _, bc := range []struct {
		name, comp string
		size       int
	}{{"4K/zstd", "zstd", 4000}, {"100K/zstd", "zstd", 100 << 10}, {"100K/s2", "s2", 100 << 10}, {"100K/none", "none", 100 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openTest(b, Options{Compression: bc.comp})
			var msgs []*Message
			for i := range 64 {
				m := testMessage(fmt.Sprintf("b%04d", i), 1)
				if err := s.Append(m, testMail(uint64(i), bc.size)); err != nil {
					b.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			b.SetBytes(int64(msgs[0].Size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Body(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkScan measures the startup scan: ns/op is per message.
func BenchmarkScan(b *testing.B) {
	s := openTest(b, Options{Compression: "none"})
	const n = 10000
	done := make(chan error, 64)
	for w := range 64 {
		go func() {
			for i := w; i < n; i += 64 {
				if err := s.Append(testMessage(fmt.Sprintf("s%06d", i), 3), []byte("x\r\n")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 64 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	count := 0
	for count < b.N {
		err := s.Scan(func(*Message) error {
			count++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompression compares the spool settings on three corpora, one
// message per record as the spool stores them, each body with the codec
// codecFor picks for it: realistic mail (headers, a text part and a
// quoted-printable HTML part, 2–50 KB), the same at 100 KB (a newsletter)
// and 100 KB with a base64 attachment. Reported: compression ratio, and
// MB/s of raw mail (SetBytes) for compress and decompress.
func BenchmarkCompression(b *testing.B) {
	corpora := []struct {
		name string
		gen  func(i int) []byte
	}{
		{"mail2-50K", func(i int) []byte { return testMail(uint64(i), 2000+i*750) }},
		{"mail100K", func(i int) []byte { return testMail(uint64(i), 100<<10) }},
		{"attach100K", func(i int) []byte { return testAttachmentMail(uint64(i), 100<<10) }},
	}
	for _, cp := range corpora {
		var corpus [][]byte
		raw := 0
		for i := range 64 {
			m := cp.gen(i)
			corpus = append(corpus, m)
			raw += len(m)
		}
		for _, c := range []Compression{CompressZstd, CompressS2, CompressNone} {
			cs, err := newCodecs(c)
			if err != nil {
				b.Fatal(err)
			}
			recs := make([][]byte, len(corpus))
			stored := 0
			for i, m := range corpus {
				recs[i] = cs.appendRecord(nil, cs.codecFor(m), "id", m)
				stored += len(recs[i])
			}
			b.Run(cp.name+"/"+c.String()+"/compress", func(b *testing.B) {
				b.SetBytes(int64(raw / len(corpus)))
				b.ReportAllocs()
				var buf []byte
				i := 0
				for b.Loop() {
					m := corpus[i%len(corpus)]
					buf = cs.appendRecord(buf[:0], cs.codecFor(m), "id", m)
					i++
				}
				b.ReportMetric(float64(raw)/float64(stored), "ratio")
			})
			b.Run(cp.name+"/"+c.String()+"/decompress", func(b *testing.B) {
				b.SetBytes(int64(raw / len(corpus)))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					v, _, err := decodeRecord(recs[i%len(recs)])
					if err != nil {
						b.Fatal(err)
					}
					if v.Codec != CompressNone { // Body returns such a payload as it is
						if _, err := cs.decompress(v); err != nil {
							b.Fatal(err)
						}
					}
					i++
				}
			})
			cs.close()
		}
	}
}

// BenchmarkAppendRemove64 is acceptance and delivery together: 64 writers
// each append a message and remove it again, as the delivery of a message
// with one recipient does once its 250 is read. outcome-syncs/msg counts
// the index fsyncs the committer made for removals alone; the appends'
// group commits carry the rest.
func BenchmarkAppendRemove64(b *testing.B) { appendParallel(b, true) }

// BenchmarkRemove is the settle step of a delivered message alone: one
// caller removes messages appended beforehand (outside the timer), one
// after another.
func BenchmarkRemove(b *testing.B) {
	settleBench(b, func(s *Spool, m *Message) error { return s.Remove(m.ID) })
}

// BenchmarkUpdate is the settle step of a deferred message: one caller
// updates messages appended beforehand (attempts and a recipient's reply).
func BenchmarkUpdate(b *testing.B) {
	settleBench(b, func(s *Spool, m *Message) error {
		m.Attempts++
		m.Recipients[0].LastReply = "451 4.3.0 try again later"
		return s.Update(m)
	})
}

// settleBench appends b.N messages, then times settle on each.
func settleBench(b *testing.B, settle func(*Spool, *Message) error) {
	s := openTest(b, Options{})
	body := testMail(1, 2000)
	msgs := make([]*Message, b.N)
	for i := range msgs {
		msgs[i] = testMessage(fmt.Sprintf("d%09d", i), 1)
		if err := s.Append(msgs[i], body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, m := range msgs {
		if err := settle(s, m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := s.Close(); err != nil { // syncs the last outcomes
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.Stats().OutcomeSyncs)/float64(b.N), "outcome-syncs/op")
}

// BenchmarkCommitLatency is the latency of Append as a client waits for
// its "250": N concurrent appenders of 2 KB mail (the size of make bench
// (a)), each appending as soon as its previous append returned. It reports
// the p50 and p99 of one Append (the group commit a message waits for),
// appends/s and group commits per message. Acceptance with many clients
// is bound by this latency, not by CPU: the fsyncs a group waits for.
func BenchmarkCommitLatency(b *testing.B) {
	for _, n := range []int{1, 16, 64, 200} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			s := openTest(b, Options{})
			body := testMail(1, 2000)
			b.ReportAllocs()
			b.SetParallelism((n + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			var next atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					m := testMessage(fmt.Sprintf("l%09d", next.Add(1)), 1)
					t0 := time.Now()
					if err := s.Append(m, body); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			el := time.Since(start)
			if len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			st := s.Stats()
			b.ReportMetric(float64(st.Appends)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(st.Groups)/float64(st.Appends), "groups/msg")
		})
	}
}
