package engine

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/engine/config"
	"gannet/internal/spooltest"
	"gannet/queue"
)

// corruptSpool leaves n one-recipient messages in a spool under dir, as a
// stopped relay would, then damages two of them (spooltest.Damage): the
// index value of badIndex becomes garbage, and a byte of badRecord's body
// record flips. It returns the ids in order.
func corruptSpool(t *testing.T, dir string, n, badIndex, badRecord int) []string {
	t.Helper()
	sp, err := queue.Open(queue.Options{Dir: dir, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("0corrupttest%08d", i)
		m := &queue.Message{ID: id, From: "app@src.test", Created: time.Now(),
			Recipients: []queue.Recipient{{Addr: fmt.Sprintf("u%d@dst.test", i)}}}
		body := fmt.Sprintf("From: app@src.test\r\nTo: u%d@dst.test\r\nSubject: message %d\r\n\r\nBody %d.\r\n", i, i, i)
		if err := sp.Append(m, []byte(body)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := spooltest.Damage(dir, []string{ids[badIndex]}, []string{ids[badRecord]}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestCorruptSpoolEntriesAreQuarantined: a spool with an undecodable index
// value and a damaged body record no longer stops the engine's start. The
// good messages are delivered, each bad one is logged, counted in
// gannet_spool_corrupt_total by kind and kept in the spool's quarantine.
func TestCorruptSpoolEntriesAreQuarantined(t *testing.T) {
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	ids := corruptSpool(t, spoolDir, 5, 1, 3)

	sink, err := bsink.Start(bsink.Config{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	c := config.Default()
	c.Spool.Path, c.Log.Path = spoolDir, filepath.Join(dir, "logs")
	c.SMTPListeners, c.HTTPListeners = nil, nil
	c.Delivery.RelayTo = sink.Addr()
	var logs syncBuffer
	e, err := New(c, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
	if err := e.Start(); err != nil {
		t.Fatalf("Start with two corrupt messages in the spool: %v", err)
	}

	deadline := time.Now().Add(15 * time.Second)
	for {
		got := map[string]bool{}
		for _, m := range sink.Messages() {
			for _, r := range m.Rcpts {
				got[r] = true
			}
		}
		text := scrapeText(e.metrics)
		index, record := sample(text, `gannet_spool_corrupt_total{kind="index"}`), sample(text, `gannet_spool_corrupt_total{kind="record"}`)
		if len(got) == 3 && got["u0@dst.test"] && got["u2@dst.test"] && got["u4@dst.test"] && index == "1" && record == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %v, gannet_spool_corrupt_total index %q record %q; want u0, u2, u4 delivered and 1 of each\n%s",
				got, index, record, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := e.spool.Stats(); st.Quarantined != 2 {
		t.Errorf("spool: %d quarantined, want 2", st.Quarantined)
	}
	for id, kind := range map[string]string{ids[1]: "index", ids[3]: "record"} {
		line := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "id="+id) && strings.Contains(l, "quarantined") {
				line = l
			}
		}
		if !strings.Contains(line, "kind="+kind) || !strings.Contains(line, "reason=") {
			t.Errorf("no log line for %s (kind %s):\n%s", id, kind, logs.String())
		}
		if q, ok, err := e.spool.Quarantined(id); !ok || err != nil || q.Kind.String() != kind {
			t.Errorf("Quarantined(%s) = %+v, %v, %v", id, q, ok, err)
		}
	}
}
