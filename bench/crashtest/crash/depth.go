package crash

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// QueueDepthConfig is one max_queue_depth test.
type QueueDepthConfig struct {
	Binaries
	Dir   string // work directory
	Depth int    // [queue] max_queue_depth (20)
	Log   io.Writer
}

// QueueDepthReport is what the max_queue_depth test saw.
type QueueDepthReport struct {
	Report
	Sent        int    // messages smtpblast tried with the receiver down
	FullReply   string // MAIL FROM reply with the queue full
	Resumed     bool   // MAIL FROM got 250 again once the queue drained
	ResumeReply string
}

// RunQueueDepth fills the queue to max_queue_depth with the receiver down
// (smtpblast sends Depth+10 messages over one connection), checks that
// exactly Depth were acknowledged and that MAIL FROM gets 452 4.3.1, then
// starts the receiver, restarts gannet and checks that every acknowledged
// message is delivered and acceptance resumes.
func RunQueueDepth(ctx context.Context, cfg QueueDepthConfig) (*QueueDepthReport, error) {
	if err := cfg.Binaries.check(); err != nil {
		return nil, err
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 20
	}
	logf := logger(cfg.Log)
	setup := gannetSetup{Dir: cfg.Dir, SpoolDir: filepath.Join(cfg.Dir, "spool"), MaxQueueDepth: cfg.Depth}
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
	rep := &QueueDepthReport{Sent: cfg.Depth + 10}
	r := &rep.Report
	g, err := startGannet(ctx, logf, cfg.Gannet, confPath, setup.SMTPAddr, 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer g.kill9()
	ids := filepath.Join(cfg.Dir, "blast-fill.ids")
	b, err := startProc(logf, cfg.Blast, append(blastArgs(setup.SMTPAddr, "depth", ids, "2k", 1, "", time.Minute),
		"-messages", strconv.Itoa(rep.Sent))...)
	if err != nil {
		return nil, err
	}
	select {
	case <-b.done:
	case <-time.After(90 * time.Second):
		b.stop(10 * time.Second)
	}
	rep.FullReply, err = probeMail(setup.SMTPAddr)
	if err != nil {
		rep.FullReply = "error: " + err.Error()
	}
	if g.exited() || g.panicked() {
		r.GannetCrashes++
	}
	if !g.stop(30 * time.Second) {
		r.Notes = append(r.Notes, "gannet did not stop within 30s of SIGTERM")
	}
	sink, err := startSink(logf, cfg.Sink, setup.RelayTo, cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer sink.stop(10 * time.Second)
	g, err = startGannet(ctx, logf, cfg.Gannet, confPath, setup.SMTPAddr, 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer g.kill9()
	acked, err := readAcked([]string{ids})
	if err != nil {
		return nil, err
	}
	waitDrain(ctx, g, setup.HTTPAddr, filepath.Join(cfg.Dir, "sink.ids"), acked, time.Minute)
	for range 100 {
		reply, err := probeMail(setup.SMTPAddr)
		if err == nil && strings.HasPrefix(reply, "250") {
			rep.Resumed, rep.ResumeReply = true, reply
			break
		}
		rep.ResumeReply = fmt.Sprint(reply, err)
		time.Sleep(100 * time.Millisecond)
	}
	if g.exited() || g.panicked() {
		r.GannetCrashes++
	}
	g.stop(30 * time.Second)
	sink.stop(10 * time.Second)
	r.Rounds = 2
	if err := verdict(r, []string{ids}, cfg.Dir); err != nil {
		return nil, err
	}
	logf("max_queue_depth %d: %s; full: %q; resumed %v", cfg.Depth, r, rep.FullReply, rep.Resumed)
	return rep, nil
}
