package main

import (
	"context"
	"log/slog"
	"os"

	"gannet/engine/config"
)

// run runs the relay with cfg until ctx is cancelled (SIGTERM or SIGINT),
// then shuts down cleanly. cfg.File is the config path ("" for the default
// config), for reloading on SIGHUP. Logs go to stderr.
//
// PLACEHOLDER: the lead wires the engine here; this body only waits.
func run(ctx context.Context, cfg *config.Config) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	log.Warn("engine not wired yet", "config", cfg.File)
	<-ctx.Done()
	log.Info("stopping")
	return nil
}
