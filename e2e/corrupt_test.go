package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gannet/internal/spooltest"
)

// TestE2ECorruptSpoolEntries: mail is queued while the receiver is down,
// gannet stops, and two of the queued messages are damaged on disk — one
// index value overwritten with garbage, one byte of another's body record
// flipped. gannet starts again anyway: the other messages are delivered
// intact, each damaged one is logged, counted in
// gannet_spool_corrupt_total{kind} and shown by `gannet queue inspect` as
// corrupt; a further restart neither brings them back nor counts them again.
func TestE2ECorruptSpoolEntries(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{RetryInterval: "1s", MaxRetryInterval: "2s"}) // no receiver yet

	const n = 6
	var ids []string
	msgs := map[string][]byte{}
	c := dialSMTP(t, "", g.SMTPAddr)
	for i := range n {
		rcpt := fmt.Sprintf("corrupt%d@%s", i, domain1)
		msgs[rcpt] = simpleMessage(senderAddr, rcpt, fmt.Sprintf("corrupt %d", i), "Queued, then the disk rots.\n")
		ids = append(ids, acceptedID(t, c.Send(senderAddr, []string{rcpt}, msgs[rcpt])))
	}
	c.Quit()
	badIndex, badRecord := ids[1], ids[4]
	g.Stop()
	if err := spooltest.Damage(filepath.Join(g.Dir, "spool"), []string{badIndex}, []string{badRecord}); err != nil {
		t.Fatal(err)
	}

	rcv := startGoSink(t, hostPort(mxIP1, w.port))
	g.Restart() // fails the test if gannet exits instead of greeting
	waitArrivals(t, rcv, n-2, deliveryMax)
	var s metricsScrape
	waitFor(t, deliveryMax, "gannet_spool_corrupt_total 1 of each kind", func() (bool, string) {
		s = scrapeMetrics(t, g.HTTPAddr)
		return s.values[`gannet_spool_corrupt_total{kind="index"}`] == 1 && s.values[`gannet_spool_corrupt_total{kind="record"}`] == 1,
			grepLines(s.text, "gannet_spool_corrupt_total")
	})
	time.Sleep(settleTime) // a late delivery of a damaged message would show now
	got := map[string]int{}
	for _, a := range rcv.arrivals(t) {
		for _, r := range a.Rcpts {
			got[r]++
			assertRelayedExactly(t, r, a.Data, msgs[r])
		}
	}
	for i := range n {
		rcpt := fmt.Sprintf("corrupt%d@%s", i, domain1)
		want := 1
		if i == 1 || i == 4 {
			want = 0
		}
		if got[rcpt] != want {
			t.Errorf("%s (id %s) delivered %d times, want %d", rcpt, ids[i], got[rcpt], want)
		}
	}

	// The log says what happened to each, by id.
	out := g.p.out.String()
	for id, kind := range map[string]string{badIndex: "index", badRecord: "record"} {
		line := grepLines(out, "id="+id)
		if !strings.Contains(line, "corrupt message quarantined") || !strings.Contains(line, "kind="+kind) {
			t.Errorf("log lines for %s (want one saying corrupt message quarantined, kind=%s):\n%s", id, kind, line)
		}
		t.Logf("gannet's log on %s:\n%s", id, line)
	}

	// The admin API and the CLI show both as corrupt.
	var in struct {
		ID, State string
		Corrupt   *struct {
			Kind, Reason string
			RawSize      int64 `json:"raw_size"`
		}
		Message struct {
			Recipients []struct{ Email string }
		}
	}
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+badIndex, "").want(t, "inspect a corrupt index entry", 200).decode(t, &in)
	if in.State != "corrupt" || in.Corrupt == nil || in.Corrupt.Kind != "index" || in.Corrupt.Reason == "" ||
		in.Corrupt.RawSize != int64(len(spooltest.GarbageIndexValue)) {
		t.Errorf("inspect %s: %+v %+v", badIndex, in, in.Corrupt)
	}
	in.Corrupt = nil
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+badRecord, "").want(t, "inspect a corrupt record", 200).decode(t, &in)
	if in.State != "corrupt" || in.Corrupt == nil || in.Corrupt.Kind != "record" || in.Corrupt.RawSize == 0 ||
		len(in.Message.Recipients) != 1 || in.Message.Recipients[0].Email != "corrupt4@"+domain1 {
		t.Errorf("inspect %s: %+v %+v", badRecord, in, in.Corrupt)
	}
	for id, kind := range map[string]string{badIndex: "index", badRecord: "record"} {
		out, errOut, code := runGannetCLI(t, g, "queue", "inspect", id)
		if code != 0 || !strings.Contains(out, "corrupt, quarantined") || !strings.Contains(out, "Corrupt   "+kind) {
			t.Errorf("gannet queue inspect %s (%d):\n%s%s", id, code, out, errOut)
		}
	}
	out, errOut, code := runGannetCLI(t, g, "queue", "summary")
	if code != 0 || !strings.Contains(out, "2 corrupt message(s) quarantined") || !strings.Contains(out, badIndex) || !strings.Contains(out, badRecord) {
		t.Errorf("gannet queue summary (%d):\n%s%s", code, out, errOut)
	}

	// Restarted once more: nothing to report, nothing delivered again, the
	// quarantine kept.
	g.Stop()
	g.Restart()
	s = scrapeMetrics(t, g.HTTPAddr)
	if i, r := s.get(t, `gannet_spool_corrupt_total{kind="index"}`), s.get(t, `gannet_spool_corrupt_total{kind="record"}`); i != 0 || r != 0 {
		t.Errorf("after another restart gannet_spool_corrupt_total index %v record %v, want 0 and 0", i, r)
	}
	time.Sleep(settleTime)
	if have := countRcpts(t, rcv); have != n-2 {
		t.Errorf("after another restart the receiver has %d recipients, want still %d", have, n-2)
	}
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+badRecord, "").want(t, "inspect after restart", 200).decode(t, &in)
	if in.State != "corrupt" {
		t.Errorf("after another restart %s is %q, want corrupt", badRecord, in.State)
	}
}
