package queue

import (
	"fmt"
	"runtime"
	"sync/atomic"
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
// pays a full segment fsync and an index fsync.
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

func BenchmarkBody(b *testing.B) {
	s := openTest(b, Options{})
	var msgs []*Message
	for i := range 256 {
		m := testMessage(fmt.Sprintf("b%04d", i), 1)
		if err := s.Append(m, testMail(uint64(i), 4000)); err != nil {
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

// BenchmarkCompression compares the codecs on realistic mail (headers, a
// text part and a quoted-printable HTML part, 2–50 KB), one message per
// frame as the spool stores them. Reported: compression ratio, and MB/s of
// raw mail (SetBytes) for compress and decompress.
func BenchmarkCompression(b *testing.B) {
	var corpus [][]byte
	raw := 0
	for i := range 64 {
		m := testMail(uint64(i), 2000+i*750)
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
			recs[i] = cs.appendRecord(nil, "id", m)
			stored += len(recs[i])
		}
		b.Run(c.String()+"/compress", func(b *testing.B) {
			b.SetBytes(int64(raw / len(corpus)))
			b.ReportAllocs()
			var buf []byte
			i := 0
			for b.Loop() {
				buf = cs.appendRecord(buf[:0], "id", corpus[i%len(corpus)])
				i++
			}
			b.ReportMetric(float64(raw)/float64(stored), "ratio")
		})
		b.Run(c.String()+"/decompress", func(b *testing.B) {
			b.SetBytes(int64(raw / len(corpus)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v, _, err := decodeRecord(recs[i%len(recs)])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := cs.decompress(v); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		cs.close()
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
