package engine

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gannet/engine/config"
	"gannet/engine/dkim"
	"gannet/engine/httpapi"
	"gannet/engine/inbound"
	"gannet/smtpwire"
)

// The benchmarks of the store path: what one message costs between the
// listener and the spool. BenchmarkPrepare measures the CPU part (policy,
// final message, signatures) without the spool; BenchmarkAccept and
// BenchmarkInject the whole path through a real spool. Run the latter with
// TMPDIR on a RAM disk (TMPDIR=/dev/shm) so that fsync latency does not
// drown the CPU cost.

// benchBody is a 2 KB message with the routing headers a trusted
// application sends.
func benchBody(meta bool) []byte {
	var b strings.Builder
	if meta {
		b.WriteString("X-Tenant: acme\r\nX-Campaign: spring\r\nX-Type: transactional\r\n")
	}
	b.WriteString("From: News <news@acme.example>\r\nTo: u@dst.test\r\nSubject: The spring sale\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for b.Len() < 2048 {
		b.WriteString(strings.Repeat("x", 62) + "\r\n")
	}
	return []byte(b.String())
}

// benchIncoming is one SMTP message from a relay host.
func benchIncoming(body []byte) *inbound.Incoming {
	return &inbound.Incoming{
		Listener: "relay-in", Hostname: "relay.test",
		Peer: netip.MustParseAddrPort("127.0.0.1:40000"),
		Envelope: &smtpwire.Envelope{Helo: "app.test", ESMTP: true,
			From: smtpwire.Path{Addr: "news@acme.example"}, Rcpts: []smtpwire.Path{{Addr: "u@dst.test"}}},
		Body: body,
	}
}

// BenchmarkPrepare: policy, final message and signatures of one 2 KB SMTP
// message, with the Received field, as Accept makes them (plain: Date and
// Message-ID added; meta: three meta headers read and stripped and
// List-Unsubscribe added as well; ed25519: plain, signed with an Ed25519
// key).
func BenchmarkPrepare(b *testing.B) {
	for _, c := range []struct {
		name string
		meta bool
		dkim bool
	}{{"plain", false, false}, {"meta", true, false}, {"ed25519", false, true}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := policyConfig(b)
			if c.dkim {
				cfg.DKIM = []config.DKIM{{Domain: "acme.example", Selector: "s1",
					KeyFile: filepath.Join("dkim", "testdata", "ed25519-pkcs8.pem"), Headers: dkim.DefaultHeaders()}}
			}
			e := benchEngine(b, cfg)
			in := benchIncoming(benchBody(c.meta))
			now := time.Now()
			b.SetBytes(int64(len(in.Body)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				benchPrepareOne(b, e, in, fmt.Sprint("ID", i), now)
			}
		})
	}
}

// benchEngine is an Engine with what the CPU part of the store path needs.
func benchEngine(b *testing.B, cfg *config.Config) *Engine {
	e, _ := policyEngine(b, cfg)
	return e
}

// benchPrepareOne is Accept's work on one message between the id and the
// spool: the arrival, prepare (policy, edits, Received, signatures), and
// the buffer back to the pool.
func benchPrepareOne(b *testing.B, e *Engine, in *inbound.Incoming, id string, now time.Time) {
	a := e.smtpArrival(in)
	p, err := e.prepare(e.policy(), &a, id, now)
	if err != nil {
		b.Fatal(err)
	}
	e.bodies.Put(p.buf)
}

// spoolEngine is an Engine of quietConfig with a spool in a temporary
// directory and no delivery (it is not started: queued messages wait).
func spoolEngine(b *testing.B) *Engine {
	c := quietConfig(b.TempDir())
	c.Queue.MaxQueueDepth = 0
	c.Tenants = []config.Tenant{{Name: "acme", ListUnsubscribe: "https://acme.example/u/{id}"}}
	e, err := New(c, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Stop(context.Background()) })
	return e
}

// BenchmarkAccept: SMTP messages (2 KB, meta headers) taken by workers in
// parallel, as the inbound server's workers do, through the spool.
func BenchmarkAccept(b *testing.B) {
	e := spoolEngine(b)
	body := benchBody(true)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		in := benchIncoming(body)
		for pb.Next() {
			if r := e.Accept(context.Background(), in); r.Code != 250 {
				b.Fatal(r)
			}
		}
	})
}

// BenchmarkInject: HTTP inject calls of 100 messages (2 KB, meta headers)
// each, as /api/inject/v1 makes one per recipient; one op is one call.
func BenchmarkInject(b *testing.B) {
	e := spoolEngine(b)
	body := benchBody(true)
	msgs := make([]httpapi.Message, 100)
	for i := range msgs {
		msgs[i] = httpapi.Message{From: "news@acme.example", Recipients: []string{fmt.Sprintf("u%d@dst.test", i)}, Body: body}
	}
	b.SetBytes(int64(len(msgs) * len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Inject(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
}
