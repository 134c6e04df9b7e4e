package events

import (
	"context"
	"fmt"
	"strings"
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
	if err := b.Declare(exchange, queue); err != nil {
		t.Fatal(err)
	}
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
	b.StopBroker()
	add(150)
	waitFor(t, 30*time.Second, "failed attempts while the broker is down", func() (bool, string) {
		return c.get("rabbit", ResultRetried) > 0, c.String()
	})
	if st := s.Status()[0]; st.Backlog == 0 || st.LastError == "" {
		t.Errorf("status while the broker is down: %+v", st)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "all 300 records confirmed", func() (bool, string) {
		return c.get("rabbit", ResultOK) >= 300 && s.Status()[0].Backlog == 0, c.String()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := b.Drain(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	byUUID, keys, persistent := map[string]int{}, map[string]string{}, true
	for _, m := range msgs {
		byUUID[m.ID]++
		keys[m.ID] = m.RoutingKey
		persistent = persistent && m.Persistent
		if !strings.Contains(string(m.Body), `"uuid":"`+m.ID+`"`) {
			t.Errorf("message %s: body %.200s does not carry its uuid", m.ID, m.Body)
		}
	}
	var missing, wrongKey []string
	for u, key := range want {
		if byUUID[u] == 0 {
			missing = append(missing, u)
		} else if keys[u] != key {
			wrongKey = append(wrongKey, fmt.Sprintf("%s: %s, want %s", u, keys[u], key))
		}
	}
	if len(missing) > 0 || len(wrongKey) > 0 || !persistent {
		t.Errorf("%d of %d records missing from the queue; routing keys wrong: %v; all persistent: %v",
			len(missing), len(want), wrongKey, persistent)
	}
	t.Logf("%d records in the queue, %d duplicates; %s", len(byUUID), len(msgs)-len(byUUID), c)
}
