package crash

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DiskFullConfig is one disk-full test.
type DiskFullConfig struct {
	Binaries
	Dir       string        // work directory; the spool tmpfs is mounted at Dir/spool
	SizeMiB   int           // tmpfs size (64)
	MsgSize   string        // smtpblast -size ("64k"): big messages fill the disk fast
	FillLimit time.Duration // give up filling after this long (3m)
	Log       io.Writer
}

// DiskFullReport adds what the disk-full test saw to the Report.
type DiskFullReport struct {
	Report
	FreeAtFull  uint64        // bytes free on the tmpfs when 452 4.3.1 appeared
	Resumed     bool          // a MAIL FROM got 250 again after the drain, without a restart
	ResumeAfter time.Duration // from the restart (receiver up) to the first 250
	AfterAcked  int           // messages acknowledged after acceptance resumed

	RefusedAfterRestart bool // the first MAIL FROM after the restart on the full disk got 452 4.3.1
}

// RunDiskFull runs the disk-full scenario: fill the tmpfs spool with the
// receiver down until MAIL FROM gets 452 4.3.1, check that it keeps
// refusing, stop gannet, start the receiver, start gannet again on the full
// disk, and wait until every acknowledged message is delivered and MAIL
// FROM gets 250 again without another restart; then send a few more.
// It needs root to mount the tmpfs; without it the error satisfies
// IsNotRoot.
func RunDiskFull(ctx context.Context, cfg DiskFullConfig) (*DiskFullReport, error) {
	if err := cfg.Binaries.check(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errNotRoot
	}
	if cfg.SizeMiB <= 0 {
		cfg.SizeMiB = 64
	}
	if cfg.MsgSize == "" {
		cfg.MsgSize = "64k"
	}
	if cfg.FillLimit <= 0 {
		cfg.FillLimit = 3 * time.Minute
	}
	logf := logger(cfg.Log)
	spool := filepath.Join(cfg.Dir, "spool")
	unmount, err := mountTmpfs(spool, cfg.SizeMiB)
	if err != nil {
		return nil, err
	}
	defer unmount()
	logf("tmpfs of %d MiB at %s", cfg.SizeMiB, spool)

	setup := gannetSetup{Dir: cfg.Dir, SpoolDir: spool, Compression: "none"}
	for _, a := range []*string{&setup.SMTPAddr, &setup.HTTPAddr, &setup.RelayTo} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	confPath, err := writeConfig(setup)
	if err != nil {
		return nil, err
	}
	rep := &DiskFullReport{}
	r := &rep.Report
	check := func(g *proc, when string) {
		if g.exited() || g.panicked() {
			r.GannetCrashes++
			r.Notes = append(r.Notes, fmt.Sprintf("gannet crashed %s (%v):\n%s", when, g.err, tail(g.out.String(), 3000)))
		}
	}

	// 1. Fill the disk with the receiver down (RelayTo has no listener).
	g, err := startGannet(ctx, logf, cfg.Gannet, confPath, setup.SMTPAddr, 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer g.kill9()
	fillIDs := filepath.Join(cfg.Dir, "blast-fill.ids")
	blast, err := startProc(logf, cfg.Blast, blastArgs(setup.SMTPAddr, "fill", fillIDs, cfg.MsgSize, 4, "", cfg.FillLimit+time.Minute)...)
	if err != nil {
		return nil, err
	}
	full := false
	deadline := time.Now().Add(cfg.FillLimit)
	for !full && time.Now().Before(deadline) && ctx.Err() == nil && !g.exited() && !blast.exited() {
		time.Sleep(300 * time.Millisecond)
		reply, err := probeMail(setup.SMTPAddr)
		if err == nil && strings.HasPrefix(reply, "452 4.3.1") {
			full = true
			r.Refused452++
			rep.FreeAtFull, _ = freeBytes(spool)
		}
	}
	blast.stop(15 * time.Second)
	check(g, "while filling the disk")
	if !full {
		return rep, fmt.Errorf("no 452 4.3.1 within %v (gannet exited: %v)\n%s", cfg.FillLimit, g.exited(), tail(blast.out.String(), 2000))
	}
	acked, err := readAcked([]string{fillIDs})
	if err != nil {
		return nil, err
	}
	logf("disk full: %d acknowledged, %d bytes free, MAIL FROM gets 452 4.3.1", len(acked), rep.FreeAtFull)

	// 2. It keeps refusing while nothing drains.
	for range 3 {
		time.Sleep(500 * time.Millisecond)
		if reply, err := probeMail(setup.SMTPAddr); err == nil && strings.HasPrefix(reply, "452 4.3.1") {
			r.Refused452++
		} else {
			r.Notes = append(r.Notes, fmt.Sprintf("full disk: MAIL FROM got %q %v, want 452 4.3.1", reply, err))
		}
	}

	// 3. A clean stop on the full disk; then the receiver comes up and
	// gannet starts again on the full disk. (It is restarted rather than
	// left running because outbound skips a receiver that failed many
	// times for up to 5 minutes; the spool's recovery does not depend on
	// it.)
	if !g.stop(30 * time.Second) {
		r.Notes = append(r.Notes, "gannet did not stop within 30s of SIGTERM on a full disk")
	}
	if g.panicked() {
		check(g, "stopping on a full disk")
	}
	sink, err := startSink(logf, cfg.Sink, setup.RelayTo, cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer sink.stop(10 * time.Second)
	t0 := time.Now()
	g, err = startGannet(ctx, logf, cfg.Gannet, confPath, setup.SMTPAddr, 60*time.Second)
	if err != nil {
		return nil, fmt.Errorf("restart on a full disk: %w", err)
	}
	defer g.kill9()
	if reply, err := probeMail(setup.SMTPAddr); err == nil && strings.HasPrefix(reply, "452 4.3.1") {
		r.Refused452++
		rep.RefusedAfterRestart = true
	}

	// 4. The queue drains, segments go, and acceptance resumes by itself.
	waitDrain(ctx, g, setup.HTTPAddr, filepath.Join(cfg.Dir, "sink.ids"), acked, 3*time.Minute)
	for time.Since(t0) < 4*time.Minute && ctx.Err() == nil && !g.exited() {
		if reply, err := probeMail(setup.SMTPAddr); err == nil && strings.HasPrefix(reply, "250") {
			rep.Resumed = true
			rep.ResumeAfter = time.Since(t0)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	check(g, "while draining")
	if !rep.Resumed {
		r.Notes = append(r.Notes, fmt.Sprintf("acceptance did not resume; gannet output:\n%s", tail(g.out.String(), 3000)))
	}
	free, _ := freeBytes(spool)
	logf("receiver up: resumed=%v after %v, %d bytes free", rep.Resumed, rep.ResumeAfter.Round(time.Millisecond), free)
	ids := []string{fillIDs}
	if rep.Resumed {
		afterIDs := filepath.Join(cfg.Dir, "blast-after.ids")
		b, err := startProc(logf, cfg.Blast, append(blastArgs(setup.SMTPAddr, "after", afterIDs, "2k", 1, "", 30*time.Second), "-messages", "20")...)
		if err != nil {
			return nil, err
		}
		select {
		case <-b.done:
		case <-time.After(45 * time.Second):
			b.stop(10 * time.Second)
		}
		after, err := readAcked([]string{afterIDs})
		if err != nil {
			return nil, err
		}
		rep.AfterAcked = len(after)
		for id := range after {
			acked[id] = true
		}
		ids = append(ids, afterIDs)
		waitDrain(ctx, g, setup.HTTPAddr, filepath.Join(cfg.Dir, "sink.ids"), acked, time.Minute)
	}
	check(g, "at the end")
	if !g.stop(30 * time.Second) {
		r.Notes = append(r.Notes, "gannet did not stop within 30s of SIGTERM")
	}
	sink.stop(10 * time.Second)
	r.Rounds = 2
	if err := verdict(r, ids, cfg.Dir); err != nil {
		return nil, err
	}
	logf("%s; resumed %v after %v; %d acknowledged after", r, rep.Resumed, rep.ResumeAfter.Round(time.Millisecond), rep.AfterAcked)
	return rep, nil
}

// mountTmpfs mounts a tmpfs of sizeMiB at dir and returns its unmount.
func mountTmpfs(dir string, sizeMiB int) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sizeMiB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: mount tmpfs at %s: %v: %s", errNotRoot, dir, err, out)
	}
	return func() {
		for range 20 {
			if exec.Command("umount", dir).Run() == nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		exec.Command("umount", "-l", dir).Run()
	}, nil
}

func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
