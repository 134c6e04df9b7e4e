package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gannet/engine/logrec"
)

func amqpSinkOptions(url, exchange string) SinkOptions {
	return SinkOptions{Name: "rabbit", Kind: KindAMQP, URL: url, Exchange: exchange, RoutingKey: "{type}.{tenant}",
		Batch: true, MaxBatch: 20, MaxDelay: 20 * time.Millisecond, Timeout: 5 * time.Second}
}

// TestAMQPBrokerRestart: records published to a real RabbitMQ, which is
// restarted mid-run (and records keep coming while it is down): every
// record is in the durable queue bound to the exchange, as a persistent
// message with its uuid as message id and the routing key from the
// template.
func TestAMQPBrokerRestart(t *testing.T) {
	b := startBroker(t)
	const exchange, queue = "gannet.events.restart", "events-restart"
	b.declare(t, exchange, queue)
	c := new(counter)
	s := newTestShipper(t, t.TempDir(), c, amqpSinkOptions(b.URL(), exchange))
	defer s.Close()
	want := map[string]string{}
	add := func(n int) {
		for range n {
			i := len(want)
			typ := []logrec.Type{logrec.Reception, logrec.Delivery, logrec.Bounce}[i%3]
			tenant := []string{"acme", "globex"}[i%2]
			r := record(i, typ, tenant)
			s.Add(r)
			want[r.UUID] = string(typ) + "." + tenant
		}
	}
	add(150)
	waitFor(t, 30*time.Second, "50 records confirmed", func() (bool, string) {
		return c.get("rabbit", ResultOK) >= 50, c.String()
	})
	b.stopServer()
	add(150)
	waitFor(t, 30*time.Second, "failed attempts while the broker is down", func() (bool, string) {
		return c.get("rabbit", ResultRetried) > 0, c.String()
	})
	if st := s.Status()[0]; st.Backlog == 0 || st.LastError == "" {
		t.Errorf("status while the broker is down: %+v", st)
	}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "all 300 records confirmed", func() (bool, string) {
		return c.get("rabbit", ResultOK) >= 300 && s.Status()[0].Backlog == 0, c.String()
	})
	got := consumed{byUUID: map[string]int{}, keys: map[string]string{}, persistent: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.drain(ctx, queue, &got); err != nil {
		t.Fatal(err)
	}
	var missing, wrongKey []string
	for u, key := range want {
		if got.byUUID[u] == 0 {
			missing = append(missing, u)
		} else if got.keys[u] != key {
			wrongKey = append(wrongKey, fmt.Sprintf("%s: %s, want %s", u, got.keys[u], key))
		}
	}
	if len(missing) > 0 || len(wrongKey) > 0 || !got.persistent {
		t.Errorf("%d of %d records missing from the queue; routing keys wrong: %v; all persistent: %v",
			len(missing), len(want), wrongKey, got.persistent)
	}
	dups := 0
	for _, n := range got.byUUID {
		dups += n - 1
	}
	t.Logf("%d records in the queue, %d duplicates; %s", len(got.byUUID), dups, c)
}
