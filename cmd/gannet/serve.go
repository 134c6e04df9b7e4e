package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gannet/engine"
	"gannet/engine/config"
)

// run runs the relay with cfg until ctx is cancelled (SIGTERM or SIGINT),
// then shuts down cleanly: the listeners stop taking mail, in-flight
// transactions finish (up to [server] drain_timeout), and the spool is closed. SIGHUP
// reloads what can change without a restart. Logs go to stderr.
func run(ctx context.Context, cfg *config.Config) error {
	// [log] level, applied by the engine at start and on reload, and
	// changed at run time by POST /api/admin/log-level/v1.
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	e, err := engine.New(cfg, engine.Options{Logger: log, LogLevel: level})
	if err != nil {
		return err
	}
	if err := e.Start(); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(stopCtx)
		return err
	}
	log.Info("gannet running", "config", configName(cfg))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading")
			e.Reload() // logs what it applied, or why not
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("stopping", "drain_timeout", e.DrainTimeout())
	stopCtx, cancel := context.WithTimeout(context.Background(), e.DrainTimeout())
	defer cancel()
	if err := e.Stop(stopCtx); err != nil {
		log.Error("stop", "err", err)
	}
	log.Info("stopped")
	return nil
}

func configName(cfg *config.Config) string {
	if cfg.File == "" {
		return "embedded default"
	}
	return cfg.File
}
