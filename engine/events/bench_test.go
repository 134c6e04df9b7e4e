package events

import (
	"fmt"
	"testing"
	"time"

	"gannet/engine/logrec"
)

// benchShip adds b.N records to a Shipper with sink o and waits until the
// sink has taken them all; it reports records/s from the first Add to the
// last confirmation (journal write, read, HTTP or AMQP, the receiver's own
// work included: every process shares the machine's cores).
func benchShip(b *testing.B, o SinkOptions) {
	c := new(counter)
	s, err := New(Options{Dir: b.TempDir(), Sinks: []SinkOptions{o}, Count: c.count, Pending: b.N + 1,
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	defer s.Close()
	recs := make([]*logrec.Record, b.N)
	for i := range recs {
		recs[i] = record(i, logrec.Delivery, "acme")
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		s.Add(r)
	}
	deadline := start.Add(10 * time.Minute)
	for c.get(o.Name, ResultOK) < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("shipped %d of %d records in 10 minutes: %s", c.get(o.Name, ResultOK), b.N, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	if n := c.get(o.Name, ResultRetried) + c.get(o.Name, ResultDropped); n != 0 {
		b.Logf("retried or dropped: %s", c)
	}
}

// BenchmarkShipWebhook: records/s to a webhook on loopback that checks
// every signature, one record per request or batches of 100.
func BenchmarkShipWebhook(b *testing.B) {
	for _, batch := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=%v", batch), func(b *testing.B) {
			rcv := startReceiver(b, testSecret)
			o := hookSink(rcv.url, batch)
			o.MaxBatch, o.MaxDelay = 100, 10*time.Millisecond
			benchShip(b, o)
			if _, _, _, bad, _ := rcv.snapshot(); bad != 0 {
				b.Fatalf("%d bad signatures", bad)
			}
		})
	}
}

// BenchmarkShipAMQP: records/s to a real RabbitMQ (persistent messages
// into a durable queue, publisher confirms), one record per confirmation
// round or batches of 100.
func BenchmarkShipAMQP(b *testing.B) {
	rb := startBroker(b)
	for _, batch := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=%v", batch), func(b *testing.B) {
			exchange := fmt.Sprintf("gannet.bench.%v.%d", batch, b.N)
			if err := rb.Declare(exchange, exchange); err != nil {
				b.Fatal(err)
			}
			o := amqpSinkOptions(rb.URL(), exchange)
			o.Batch, o.MaxBatch, o.MaxDelay = batch, 100, 10*time.Millisecond
			benchShip(b, o)
		})
	}
}

// addBench starts a Shipper with two sinks that take every record, whose
// receivers are unreachable (the journal writer runs, nothing ships), and
// returns a record for it.
func addBench(b *testing.B) (*Shipper, *logrec.Record) {
	sinks := []SinkOptions{
		{Name: "a", Kind: KindWebhook, URL: "http://127.0.0.1:1/", Batch: true},
		{Name: "b", Kind: KindWebhook, URL: "http://127.0.0.1:1/", Batch: true},
	}
	s, err := New(Options{Dir: b.TempDir(), Sinks: sinks, RetryMin: time.Hour, RetryMax: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	b.Cleanup(func() { s.Close() })
	return s, record(1, logrec.Delivery, "acme")
}

// BenchmarkAdd: what event shipping costs the mail path per record (two
// sinks that take it: uuid, one encoding, one copy), with the journal
// writer running and the sinks unreachable.
func BenchmarkAdd(b *testing.B) {
	s, r := addBench(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.UUID = ""
		s.Add(r)
	}
}

// BenchmarkAddEncoded: the same with the record encoded already, as the
// engine hands it over (logrec.Options.OnEncoded): the header and one
// copy.
func BenchmarkAddEncoded(b *testing.B) {
	s, r := addBench(b)
	r.UUID = NewUUID()
	line := r.AppendJSON(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.AddEncoded(r, line)
	}
}
