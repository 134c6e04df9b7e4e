package blast

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"gannet/bench/smtpsink/sink"
)

// FuzzReply feeds arbitrary server bytes to the reply reader: it must return
// a code in 100..599 or an error, never panic.
func FuzzReply(f *testing.F) {
	for _, seed := range []string{"250 OK\r\n", "250-a\r\n250-b\r\n250 c\r\n", "421\r\n", "25x ok\r\n", "250-\r\n", "999 x\r\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &client{r: bufio.NewReaderSize(bytes.NewReader(in), 64), codes: new([600]uint64)}
		for range 10 {
			code, _, err := c.reply(func([]byte) {})
			if err != nil {
				return
			}
			if code < 0 || code > 999 {
				t.Fatalf("code %d", code)
			}
		}
	})
}

// BenchmarkClientTransaction measures one pipelined 2 KB transaction from
// the client's side against the in-process sink over loopback.
func BenchmarkClientTransaction(b *testing.B) {
	s, err := sink.Start(sink.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cfg := Config{Server: s.Addr(), Pipelining: true}
	cfg.setDefaults()
	g := newGenerator(&cfg)
	c, err := dial(context.Background(), &cfg, new([600]uint64))
	if err != nil {
		b.Fatal(err)
	}
	defer c.quit()
	var m message
	rng := rand.New(rand.NewPCG(1, 0))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		g.next(&m, uint64(i+1), rng, time.Now())
		if res := c.send(cfg.From, &m); !res.acked {
			b.Fatalf("not acked: %+v", res)
		}
	}
}
