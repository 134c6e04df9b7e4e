package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gannet/bench/crashtest/crash"
)

// The spool's promises, checked on bin/gannet with the harness of
// bench/crashtest (package crash; `make crashtest` runs the long version):
// an acknowledged message survives SIGKILL, a full disk refuses new mail
// with 452 4.3.1 and recovers by itself, and max_queue_depth refuses with
// 452 4.3.1.

// crashBinaries builds (once per run) the three programs the harness drives.
func crashBinaries(t *testing.T) crash.Binaries {
	t.Helper()
	b := crash.Binaries{Gannet: gannetBinary(t), Sink: smtpsinkBinary(t)}
	r := suite.build("bench/smtpblast", "smtpblast")
	if r.err != nil {
		missingPeer(t, "bin/smtpblast", fmt.Sprintf("%v\n%s", r.err, tail(r.out, 2000)))
	}
	b.Blast = r.path
	return b
}

// crashLog sends the harness's progress lines to the test log.
type crashLog struct{ t *testing.T }

func (w crashLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func crashNotes(t *testing.T, r *crash.Report) {
	t.Helper()
	for _, n := range r.Notes {
		t.Log("note: " + n)
	}
}

// TestCrashKill9UnderLoad: three SIGKILLs of gannet under smtpblast load
// while it delivers to smtpsink (which refuses 5% of messages at the dot
// with 451, so retries and spool updates are killed too). Every message
// acknowledged with 250 must arrive, unaltered. Duplicates may be what was
// on the wire at the kills (the sink's count of messages in DATA on the
// connections the kills cut) and, on a loaded machine, the few deliveries
// of the moment before a kill whose outcome the spool had not yet synced:
// 1% of the acknowledged messages is allowed for those (a lost delivery
// outcome used to repeat 1.7–15% of them).
func TestCrashKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the kill test takes about 40 s")
	}
	bins := crashBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := crash.Run(ctx, crash.Config{
		Binaries:    bins,
		Dir:         t.TempDir(),
		Kills:       3,
		MinLife:     time.Second,
		MaxLife:     5 * time.Second,
		Connections: 8,
		Rate:        "600/s", // the machine is shared; the kills matter, not the rate
		SinkFaults:  []string{"dot:451:0.05"},
		Drain:       2 * time.Minute,
		Log:         crashLog{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	crashNotes(t, rep)
	t.Logf("kill test: %s", rep)
	if rep.Kills != 3 || rep.Acknowledged == 0 {
		t.Errorf("kills %d, acknowledged %d: the load did not run", rep.Kills, rep.Acknowledged)
	}
	if rep.Lost != 0 {
		t.Errorf("%d acknowledged messages lost: %v", rep.Lost, rep.LostIDs)
	}
	if rep.Corrupted != 0 {
		t.Errorf("%d messages corrupted: %v", rep.Corrupted, rep.CorruptIDs)
	}
	if rep.GannetCrashes != 0 {
		t.Errorf("gannet crashed by itself %d times", rep.GannetCrashes)
	}
	if slack := rep.Acknowledged / 100; !rep.DuplicatesBounded(slack) {
		t.Errorf("%d duplicates, more than the %d messages on the wire at the kills (+%d): delivery outcomes lost", rep.Duplicates, rep.DupBound, slack)
	}
}

// TestCrashDiskFull: the spool on a 64 MiB tmpfs, the receiver down. New
// mail gets 452 4.3.1 before the disk is full, gannet never crashes,
// everything acknowledged is delivered intact once the receiver is up, and
// acceptance resumes by itself when the drained segments are deleted.
// Needs root (mount); skipped loudly otherwise, failed with CI=true.
func TestCrashDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bins := crashBinaries(t)
	if os.Geteuid() != 0 {
		missingPeer(t, "root", "the disk-full test mounts a 64 MiB tmpfs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "gannet-diskfull-")
	if err != nil {
		t.Fatal(err)
	}
	// Removed after the harness has unmounted the tmpfs (RunDiskFull does).
	t.Cleanup(func() { os.RemoveAll(dir) })
	rep, err := crash.RunDiskFull(ctx, crash.DiskFullConfig{Binaries: bins, Dir: dir, SizeMiB: 64, Log: crashLog{t}})
	if crash.IsNotRoot(err) {
		missingPeer(t, "mount -t tmpfs", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	crashNotes(t, &rep.Report)
	t.Logf("disk full: %s; free at the first 452: %d bytes; resumed after %v", &rep.Report, rep.FreeAtFull, rep.ResumeAfter)
	if rep.Refused452 == 0 {
		t.Error("no 452 4.3.1 on a full disk")
	}
	if rep.Acknowledged == 0 || rep.Lost != 0 || rep.Corrupted != 0 {
		t.Errorf("acknowledged %d, lost %d %v, corrupted %d %v", rep.Acknowledged, rep.Lost, rep.LostIDs, rep.Corrupted, rep.CorruptIDs)
	}
	if rep.GannetCrashes != 0 {
		t.Errorf("gannet crashed %d times", rep.GannetCrashes)
	}
	if !rep.Resumed || rep.AfterAcked == 0 {
		t.Errorf("acceptance did not resume after the drain (resumed %v, %d acknowledged after)", rep.Resumed, rep.AfterAcked)
	}
}

// TestCrashMaxQueueDepth: with max_queue_depth = 20 and the receiver down,
// exactly 20 of 30 messages are acknowledged and MAIL FROM gets 452 4.3.1;
// once the receiver is up the 20 are delivered and acceptance resumes.
func TestCrashMaxQueueDepth(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bins := crashBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := crash.RunQueueDepth(ctx, crash.QueueDepthConfig{Binaries: bins, Dir: t.TempDir(), Depth: 20, Log: crashLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	crashNotes(t, &rep.Report)
	if rep.Acknowledged != 20 {
		t.Errorf("acknowledged %d of %d with max_queue_depth 20, want 20", rep.Acknowledged, rep.Sent)
	}
	if !strings.HasPrefix(rep.FullReply, "452 4.3.1") {
		t.Errorf("MAIL FROM with the queue full: %q, want 452 4.3.1", rep.FullReply)
	}
	if rep.Lost != 0 || rep.Corrupted != 0 || rep.GannetCrashes != 0 {
		t.Errorf("%s", &rep.Report)
	}
	if !rep.Resumed {
		t.Errorf("acceptance did not resume after the drain: %s", rep.ResumeReply)
	}
}
