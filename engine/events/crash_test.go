package events

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"gannet/engine/logrec"
)

// crashChildEnv, set, makes the test binary the shipping process that
// TestKill9MidShippingLosesNothing kills (crashChild).
const crashChildEnv = "GANNET_EVENTS_CRASH_CHILD"

const crashRecords = 3000

func crashUUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// crashChild ships crashRecords records to the webhook at $URL from the
// journal in $GANNET_EVENTS_CRASH_CHILD, says "journaled" on stdout once
// every record is in the journal, and ships until it is killed.
func crashChild(dir string) {
	c := new(counter)
	o := hookSink(os.Getenv("URL"), true)
	o.MaxBatch = 10
	s, err := New(Options{Dir: dir, Sinks: []SinkOptions{o}, Count: c.count, Pending: crashRecords + 1,
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	s.Start()
	for i := range crashRecords {
		r := record(i, logrec.Delivery, "acme")
		r.UUID = crashUUID(i)
		s.Add(r)
	}
	for s.Backlog("hooks")+uint64(c.get("hooks", ResultOK)) < crashRecords {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("journaled")
	select {}
}

// TestKill9MidShippingLosesNothing: a process shipping to a slow webhook
// is killed with SIGKILL while batches are in flight; a Shipper opened on
// its directory ships every record the dead one had journaled (at least
// once: the batch in flight again, under its key, with the same records).
func TestKill9MidShippingLosesNothing(t *testing.T) {
	rcv := startReceiver(t, testSecret)
	rcv.setAnswer(func([]map[string]any) int {
		time.Sleep(2 * time.Millisecond) // 300 batches: shipping takes a while
		return 200
	})
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "URL="+rcv.url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "journaled\n" {
		t.Fatalf("child: %q", line)
	}
	waitFor(t, 20*time.Second, "some records shipped", func() (bool, string) {
		by, _, _, _, _ := rcv.snapshot()
		return len(by) >= 100, strconv.Itoa(len(by))
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	by, _, _, _, _ := rcv.snapshot()
	if len(by) == crashRecords {
		t.Fatalf("every record shipped before the kill: the test did not kill mid-shipping")
	}
	t.Logf("killed with %d of %d records shipped", len(by), crashRecords)

	c := new(counter)
	s := newTestShipper(t, dir, c, hookSink(rcv.url, true))
	defer s.Close()
	var uuids []string
	for i := range crashRecords {
		uuids = append(uuids, crashUUID(i))
	}
	waitFor(t, 60*time.Second, "every record after the restart", func() (bool, string) {
		m := rcv.missing(uuids)
		return len(m) == 0, fmt.Sprintf("%d missing; %s", len(m), c)
	})
	by, _, _, badSig, badKey := rcv.snapshot()
	dups := 0
	for _, n := range by {
		dups += n - 1
	}
	if badSig != 0 || len(badKey) != 0 {
		t.Errorf("%d bad signatures; keys sent again with other records: %v", badSig, badKey)
	}
	t.Logf("%d duplicates after the restart", dups)
	waitFor(t, 5*time.Second, "backlog 0", func() (bool, string) {
		st := s.Status()[0]
		return st.Backlog == 0, fmt.Sprintf("%+v", st)
	})
}
