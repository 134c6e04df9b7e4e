package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gannet/bench/smtpsink/sink"
	"gannet/resolver/dnstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "smtpsink:", err)
		os.Exit(1)
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// run parses args, runs the sink until ctx ends and prints the summary.
// When started is not nil it receives the running sink (for tests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, started chan<- *sink.Sink) error {
	fs := flag.NewFlagSet("smtpsink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen        = fs.String("listen", "127.0.0.1:2526", "listen addresses, comma-separated (with -persona, default none: the personas' addresses)")
		hostname      = fs.String("hostname", "sink.example.test", "host name in the greeting and EHLO reply")
		tlsCert       = fs.String("tls-cert", "", "PEM certificate file; with -tls-key, STARTTLS is offered")
		tlsKey        = fs.String("tls-key", "", "PEM key file")
		selfSigned    = fs.Bool("tls-self-signed", false, "offer STARTTLS with an in-memory self-signed certificate")
		noPipelining  = fs.Bool("no-pipelining", false, "do not advertise PIPELINING; flush every reply")
		chunking      = fs.Bool("chunking", false, "advertise CHUNKING and accept BDAT (RFC 3030)")
		dump          = fs.String("dump", "", "directory for NNNNNNNNN.eml (body) and NNNNNNNNN.json (envelope) files")
		ids           = fs.String("ids", "", "append each accepted message's X-Blast-Id (else Message-ID) to this file")
		statsInterval = fs.Duration("stats-interval", 0, "print a summary line this often (0: only at exit)")
		quiet         = fs.Bool("quiet", false, "print nothing but errors")
		throttle      = fs.String("throttle", "", "N/m[:TEXT]: a hidden rate: after N messages per window (N/s, N/m, N/10s), MAIL gets 421 4.7.0 (or 421 TEXT) until it passes")
		maxConns      = fs.Int("max-conns", 0, "refuse connections past this many with 421 4.7.0 (0: no limit)")
		maxSize       = fs.Int64("max-size", 0, "SIZE limit in bytes (0: 64 MiB)")
		httpAddr      = fs.String("http", "", "serve JSON stats at http://ADDR/stats")
		seed          = fs.Uint64("seed", 0, "random seed for fault injection (0: from the clock)")
		personaFile   = fs.String("persona", "", "TOML file of [[persona]] tables: a provider per listen address (hidden rate and connection limit, deferral bursts, greylisting, unknown users)")
		serveDNS      = fs.Bool("dns", false, "with -persona: serve the personas' domains (MX) and MX hosts (A) over DNS on 127.0.0.1 at a free port, told at /dns of -http and on stderr")
		fails, delays listFlag
		drops         listFlag
	)
	fs.Var(&fails, "fail", `STAGE[~MATCH]:CODE:PROB[:TEXT], repeatable; STAGE connect|ehlo|mail|rcpt|data|dot (e.g. "rcpt:550:0.1"); MATCH: in the address at mail and rcpt, in the sender at data and dot; PROB "#N": the first N times only`)
	fs.Var(&delays, "delay", `STAGE:DURATION, repeatable (e.g. "dot:200ms")`)
	fs.Var(&drops, "drop", `STAGE[~MATCH]:PROB, repeatable: close without a reply (e.g. "data:0.01"; MATCH as for -fail)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg := sink.Config{
		Hostname:       *hostname,
		NoPipelining:   *noPipelining,
		Chunking:       *chunking,
		DumpDir:        *dump,
		IDsFile:        *ids,
		MaxConns:       *maxConns,
		MaxMessageSize: *maxSize,
		Seed:           *seed,
	}
	listenSet := false
	fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })
	if *personaFile != "" && !listenSet {
		*listen = "" // the personas' addresses only
	}
	for _, a := range strings.Split(*listen, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Listen = append(cfg.Listen, a)
		}
	}
	for _, spec := range fails {
		f, err := sink.ParseFailure(spec)
		if err != nil {
			return err
		}
		cfg.Faults.Failures = append(cfg.Faults.Failures, f)
	}
	for _, spec := range delays {
		d, err := sink.ParseDelay(spec)
		if err != nil {
			return err
		}
		cfg.Faults.Delays = append(cfg.Faults.Delays, d)
	}
	for _, spec := range drops {
		d, err := sink.ParseDrop(spec)
		if err != nil {
			return err
		}
		cfg.Faults.Drops = append(cfg.Faults.Drops, d)
	}
	if *personaFile != "" {
		ps, err := sink.LoadPersonas(*personaFile)
		if err != nil {
			return err
		}
		cfg.Personas = ps
	}
	if *serveDNS && len(cfg.Personas) == 0 {
		return errors.New("-dns needs -persona")
	}
	if *throttle != "" {
		t, err := sink.ParseThrottle(*throttle)
		if err != nil {
			return err
		}
		cfg.Faults.Throttle = t
	}
	switch {
	case *tlsCert != "" || *tlsKey != "":
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case *selfSigned:
		tc, err := sink.SelfSignedTLS(*hostname)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		cfg.TLS = tc
	}

	s, err := sink.Start(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	dnsAddr := ""
	if *serveDNS {
		d, err := dnstest.Start(personaZone(cfg.Personas))
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		defer d.Close()
		dnsAddr = d.Addr
		if !*quiet {
			fmt.Fprintf(stderr, "smtpsink: DNS at %s\n", dnsAddr)
		}
	}
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/", s.Handler())
		mux.HandleFunc("GET /dns", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, dnsAddr+"\n") })
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		if !*quiet {
			fmt.Fprintf(stderr, "smtpsink: stats at http://%s/stats\n", ln.Addr())
		}
	}
	if !*quiet {
		fmt.Fprintf(stderr, "smtpsink: listening on %s\n", strings.Join(s.Addrs(), ", "))
	}
	if started != nil {
		started <- s
	}

	var tick <-chan time.Time
	if *statsInterval > 0 {
		t := time.NewTicker(*statsInterval)
		defer t.Stop()
		tick = t.C
	}
	last, lastAt := s.Stats(), time.Now()
	for {
		select {
		case <-tick:
			st, now := s.Stats(), time.Now()
			if !*quiet {
				rate := float64(st.Messages-last.Messages) / now.Sub(lastAt).Seconds()
				fmt.Fprintf(stdout, "smtpsink: %s rate=%.0f/s\n", st, rate)
			}
			last, lastAt = st, now
		case <-ctx.Done():
			err := s.Close()
			if !*quiet {
				st := s.Stats()
				rate := 0.0
				if st.UptimeSeconds > 0 {
					rate = float64(st.Messages) / st.UptimeSeconds
				}
				fmt.Fprintf(stdout, "smtpsink: final %s avg=%.0f/s\n", st, rate)
				for _, l := range st.PersonaLines() {
					fmt.Fprintf(stdout, "smtpsink: %s\n", l)
				}
			}
			return err
		}
	}
}

// personaZone is the DNS data of the personas' domains (RFC 1035 master
// file text for dnstest): each domain has an MX record (RFC 5321 §5.1) to
// its persona's host, mxN.personas.example, whose A record is the
// persona's listen address. Every domain is a zone apex of its own, so
// that a question for another type gets an authoritative NODATA.
func personaZone(ps []sink.Persona) string {
	var b strings.Builder
	soa := func(name string) {
		fmt.Fprintf(&b, "%s. 3600 IN SOA ns.personas.example. hostmaster.personas.example. 1 3600 600 86400 3600\n", name)
	}
	soa("personas.example")
	for i, p := range ps {
		host, _, err := net.SplitHostPort(p.Listen)
		if err != nil || len(p.Domains) == 0 {
			continue
		}
		mx := fmt.Sprintf("mx%d.personas.example.", i+1)
		fmt.Fprintf(&b, "%s 3600 IN A %s\n", mx, host)
		for _, d := range p.Domains {
			d = strings.TrimSuffix(d, ".")
			soa(d)
			fmt.Fprintf(&b, "%s. 3600 IN MX 10 %s\n", d, mx)
		}
	}
	return b.String()
}
