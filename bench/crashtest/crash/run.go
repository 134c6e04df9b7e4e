package crash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// Config is one kill test.
type Config struct {
	Binaries
	Dir         string        // work directory (spool, logs, ids, dumps); must exist
	Kills       int           // SIGKILLs (rounds under load); 3 for the short run
	MinLife     time.Duration // a gannet lifetime under load is random in [MinLife, MaxLife]
	MaxLife     time.Duration
	Connections int    // smtpblast connections (8)
	Size        string // message size ("2k")
	Rate        string // smtpblast -rate ("" = as fast as it goes)
	Compression string // [spool] compression ("zstd")
	// SinkFaults are smtpsink -fail specs, e.g. "dot:451:0.05", so that
	// retries and spool updates happen under the kills too.
	SinkFaults []string
	Drain      time.Duration // final drain limit (2m)
	Seed       uint64        // kill moments; 0: from the clock
	Log        io.Writer     // progress lines; nil: none
}

// Run runs the kill test and returns the verdict. An error means the test
// could not be carried out (a program did not start); a Report with
// !OK() means Gannet lost, altered or crashed.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Binaries.check(); err != nil {
		return nil, err
	}
	if cfg.Kills <= 0 {
		cfg.Kills = 3
	}
	if cfg.MinLife <= 0 {
		cfg.MinLife = time.Second
	}
	if cfg.MaxLife < cfg.MinLife {
		cfg.MaxLife = cfg.MinLife + 5*time.Second
	}
	if cfg.Connections <= 0 {
		cfg.Connections = 8
	}
	if cfg.Size == "" {
		cfg.Size = "2k"
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 2 * time.Minute
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	logf := logger(cfg.Log)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667))
	logf("seed %d, %d kills, lifetimes %v–%v, dir %s", cfg.Seed, cfg.Kills, cfg.MinLife, cfg.MaxLife, cfg.Dir)

	setup := gannetSetup{Dir: cfg.Dir, SpoolDir: filepath.Join(cfg.Dir, "spool"), Compression: cfg.Compression}
	var err error
	for _, a := range []*string{&setup.SMTPAddr, &setup.HTTPAddr, &setup.RelayTo} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	confPath, err := writeConfig(setup)
	if err != nil {
		return nil, err
	}
	sinkHTTP, err := freeAddr()
	if err != nil {
		return nil, err
	}
	sinkArgs := []string{"-http", sinkHTTP}
	for _, f := range cfg.SinkFaults {
		sinkArgs = append(sinkArgs, "-fail", f)
	}
	sink, err := startSink(logf, cfg.Sink, setup.RelayTo, cfg.Dir, sinkArgs...)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: %w", err)
	}
	defer sink.stop(10 * time.Second)

	r := &Report{}
	var blastIDs []string
	var cut uint64 // the sink's cut transactions so far
	crashed := func(g *proc) {
		r.GannetCrashes++
		r.Notes = append(r.Notes, fmt.Sprintf("gannet ended by itself (%v):\n%s", g.err, tail(g.out.String(), 3000)))
	}
	for round := 1; round <= cfg.Kills; round++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		g, err := startGannet(ctx, logf, cfg.Gannet, confPath, setup.SMTPAddr, 60*time.Second)
		if err != nil {
			return nil, fmt.Errorf("round %d: gannet: %w", round, err)
		}
		r.Rounds++
		life := cfg.MinLife + time.Duration(rng.Int64N(int64(cfg.MaxLife-cfg.MinLife)+1))
		// Every second round is a drain: delivery is suspended while the
		// load runs (50–75% of the lifetime), then the load stops and
		// delivery resumes, so that the kill falls into a drain of the
		// backlog with no mail arriving — where delivery outcomes have no
		// group commit to carry them to the disk (queue: "Delivery
		// outcomes"). The suspension ends by itself should a kill bring it
		// back.
		loadFor, suspension := life, ""
		if round%2 == 0 {
			loadFor = life/2 + time.Duration(rng.Int64N(int64(life/4)+1))
			// The HTTP listener may come up a moment after the SMTP one.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				suspension, err = suspendDomain(setup.HTTPAddr, "crash.test", life+10*time.Second)
				if err == nil || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				r.Notes = append(r.Notes, fmt.Sprintf("round %d: suspend: %v (no backlog to drain)", round, err))
			}
		}
		ids := filepath.Join(cfg.Dir, fmt.Sprintf("blast-r%03d.ids", round))
		blast, err := startProc(logf, cfg.Blast, blastArgs(setup.SMTPAddr, fmt.Sprintf("r%03d", round), ids,
			cfg.Size, cfg.Connections, cfg.Rate, life+30*time.Second)...)
		if err != nil {
			g.kill9()
			return nil, err
		}
		wait := func(d time.Duration) {
			select {
			case <-time.After(d):
			case <-g.done:
			case <-ctx.Done():
			}
		}
		wait(loadFor)
		if loadFor < life && !g.exited() {
			blast.stop(15 * time.Second)
			if suspension != "" {
				if err := resume(setup.HTTPAddr, suspension); err != nil {
					r.Notes = append(r.Notes, fmt.Sprintf("round %d: resume: %v", round, err))
				}
			}
			depth, _ := queueDepth(setup.HTTPAddr)
			logf("round %d: load stopped after %v, draining %.0f queued messages", round, loadFor.Round(time.Millisecond), depth)
			wait(life - loadFor)
		}
		if g.exited() {
			crashed(g)
		} else {
			g.kill9()
			r.Kills++
		}
		if g.panicked() {
			crashed(g)
		}
		// smtpblast flushes and fsyncs its ids file on SIGTERM.
		blast.stop(15 * time.Second)
		if _, err := os.Stat(ids); err != nil {
			return nil, fmt.Errorf("round %d: smtpblast wrote no ids file: %w\n%s", round, err, tail(blast.out.String(), 2000))
		}
		acked, _ := readAcked([]string{ids})
		now, err := waitCut(ctx, sinkHTTP, 10*time.Second)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("round %d: smtpsink stats: %v (duplicate bound too low)", round, err))
		}
		if now > cut {
			r.DupBound += int(now - cut)
			logf("round %d: %d messages in DATA on gannet's connections at the kill", round, now-cut)
			cut = now
		}
		logf("round %d: killed gannet after %v; %d acknowledged this round", round, life.Round(time.Millisecond), len(acked))
		blastIDs = append(blastIDs, ids)
	}

	// Final lifetime: no load; wait for the queue to drain.
	g, err := startGannet(ctx, logf, cfg.Gannet, confPath, setup.SMTPAddr, 60*time.Second)
	if err != nil {
		return nil, fmt.Errorf("final start: %w", err)
	}
	acked, err := readAcked(blastIDs)
	if err != nil {
		g.kill9()
		return nil, err
	}
	drained := waitDrain(ctx, g, setup.HTTPAddr, filepath.Join(cfg.Dir, "sink.ids"), acked, cfg.Drain)
	if !drained {
		r.Notes = append(r.Notes, fmt.Sprintf("queue not drained within %v", cfg.Drain))
	}
	if g.exited() || g.panicked() {
		crashed(g)
	}
	if !g.stop(30 * time.Second) {
		r.Notes = append(r.Notes, "gannet did not stop within 30s of SIGTERM")
	}
	sink.stop(10 * time.Second) // flushes the ids file
	if err := verdict(r, blastIDs, cfg.Dir); err != nil {
		return nil, err
	}
	logf("%s", r)
	return r, nil
}

// waitDrain waits until gannet's queue is empty and every acknowledged id
// has reached the sink (polling both), or until limit passes.
func waitDrain(ctx context.Context, g *proc, httpAddr, sinkIDs string, acked map[string]bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil && !g.exited() {
		depth, err := queueDepth(httpAddr)
		if err == nil && depth == 0 {
			got, err := readDelivered(sinkIDs)
			if err == nil && allIn(acked, got) {
				return true
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

func allIn(acked map[string]bool, got map[string]int) bool {
	for id := range acked {
		if got[id] == 0 {
			return false
		}
	}
	return true
}

// errNotRoot is returned by RunDiskFull when it cannot mount a tmpfs.
var errNotRoot = errors.New("crash: the disk-full test mounts a tmpfs and needs root")

// IsNotRoot reports whether err means the test needs root.
func IsNotRoot(err error) bool { return errors.Is(err, errNotRoot) }
