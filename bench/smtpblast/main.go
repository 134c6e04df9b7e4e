package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gannet/bench/smtpblast/blast"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fi, err := os.Stderr.Stat()
	terminal := err == nil && fi.Mode()&os.ModeCharDevice != 0
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, terminal)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "smtpblast:", err)
	}
	os.Exit(code)
}

// run parses args, runs the load and prints the summary. It returns the exit
// code: 0 when every message was acked, 1 when some failed or on error, 2 for
// bad flags. Progress goes to stderr: a line redrawn in place when it is a
// terminal, else a whole line every -progress.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) (int, error) {
	fs := flag.NewFlagSet("smtpblast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: smtpblast [flags]

Sends load to an SMTP server (or the HTTP inject API) and prints a summary on
stdout (-json for JSON). Progress goes to stderr: on a terminal a line redrawn
in place; when stderr is not a terminal (a file, a pipe, a CI log) a whole line
every -progress (default 5s).

`)
		fs.PrintDefaults()
	}
	var cfg blast.Config
	fs.StringVar(&cfg.Server, "server", "127.0.0.1:2525", "SMTP server host:port")
	fs.IntVar(&cfg.Connections, "connections", 1, "concurrent connections")
	fs.IntVar(&cfg.Messages, "messages", 0, "total messages (0: until -duration)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run at most this long (0: 10m cap)")
	fs.IntVar(&cfg.PerConn, "per-conn", 0, "messages per connection, then QUIT and reconnect (0: no limit)")
	size := fs.String("size", "2k", "message size in bytes (k, m suffixes)")
	sizeDist := fs.String("size-dist", "", `weighted sizes, e.g. "2k:70,20k:25,100k:5" (overrides -size)`)
	fs.IntVar(&cfg.Rcpts, "rcpts", 1, "recipients per message")
	domains := fs.String("domains", "example.test", `recipient domains with weights, e.g. "a.test:3,b.test:1", or "@FILE" (the same, any number a line)`)
	fs.StringVar(&cfg.From, "from", "blast@example.test", "envelope sender")
	fs.BoolVar(&cfg.Pipelining, "pipelining", false, "pipeline MAIL/RCPT/DATA when the server offers PIPELINING")
	fs.BoolVar(&cfg.StartTLS, "starttls", false, "require STARTTLS")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "do not verify the server certificate")
	caFile := fs.String("ca", "", "PEM file of the CA certificates that verify the server (default: the system roots)")
	auth := fs.String("auth", "", "user:pass for AUTH PLAIN")
	rate := fs.String("rate", "", `target rate across all connections, e.g. "500/s"`)
	fs.StringVar(&cfg.EHLO, "ehlo", "blast.example.test", "EHLO name")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	ids := fs.String("ids", "", "write \"<queue id>\\t<X-Blast-Id>\" per acked message to this file (fsync'd at the end)")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "per command or HTTP request (0: 30s)")
	fs.StringVar(&cfg.HTTPURL, "http", "", "inject over HTTP at this base URL instead of SMTP")
	fs.StringVar(&cfg.HTTPMode, "http-mode", "message", "message (POST /v1/message) or inject (POST /api/inject/v1)")
	fs.StringVar(&cfg.RunID, "run-id", "", "X-Blast-Id prefix (default: random)")
	progressEvery := fs.Duration("progress", 5*time.Second, "when stderr is not a terminal (a file, a pipe, a CI log): print a progress line there this often (0: none); on a terminal a line is redrawn in place")
	fs.Func("header", `one more header field of every message, "Name: value" (repeatable)`, func(v string) error {
		cfg.Headers = append(cfg.Headers, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	dist := *size
	if *sizeDist != "" {
		dist = *sizeDist
	}
	if cfg.Sizes, err = blast.ParseSizeDist(dist); err != nil {
		return 2, err
	}
	if cfg.Domains, err = blast.ParseDomains(*domains); err != nil {
		return 2, err
	}
	if *rate != "" {
		if cfg.Rate, err = blast.ParseRate(*rate); err != nil {
			return 2, err
		}
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return 2, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return 2, fmt.Errorf("-ca %s: no PEM certificate", *caFile)
		}
	}
	if *auth != "" {
		var ok bool
		if cfg.AuthUser, cfg.AuthPass, ok = strings.Cut(*auth, ":"); !ok {
			return 2, fmt.Errorf("-auth wants user:pass")
		}
	}
	switch {
	case terminal:
		cfg.Progress = stderr
	case *progressEvery > 0:
		cfg.Progress, cfg.ProgressLines, cfg.ProgressInterval = stderr, true, *progressEvery
	}

	var idsFile *os.File
	var idsBuf *bufio.Writer
	if *ids != "" {
		if idsFile, err = os.Create(*ids); err != nil {
			return 1, err
		}
		defer idsFile.Close()
		idsBuf = bufio.NewWriterSize(idsFile, 64<<10)
		cfg.IDs = idsBuf
	}
	res, runErr := blast.Run(ctx, cfg)
	if idsFile != nil {
		// The ids are the client's record of what the server acknowledged:
		// make them durable before reporting.
		if err := idsBuf.Flush(); err != nil && runErr == nil {
			runErr = err
		}
		if err := idsFile.Sync(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if res == nil {
		return 1, runErr
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		res.WriteText(stdout)
	}
	if runErr != nil {
		return 1, runErr
	}
	if res.Failed > 0 || res.Acked == 0 {
		return 1, nil
	}
	return 0, nil
}
