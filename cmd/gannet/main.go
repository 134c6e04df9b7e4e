// Command gannet is the Gannet relay and its command-line tools.
//
//	gannet serve [-config FILE]          run the relay (embedded default config without -config)
//	gannet config default                print the embedded default config
//	gannet config show [-config FILE] [-changed]   print the effective config (-changed: only what differs from the default)
//	gannet check-config -config FILE     check a config; FILE:LINE lines and exit 1 on problems
//	gannet dkim-keygen -domain D -selector S -algo rsa|ed25519 -out DIR   write a DKIM key, print its TXT record
//	gannet queue summary|inspect ID      the queue, over the HTTP admin API (-api URL, -key KEY, -json);
//	                                     summary -cluster: summed over the cluster's nodes
//	gannet bounce|suspend|resume …       administrative bounces and suspensions, over the admin API
//	gannet trace server|client …         live SMTP conversations in or out, over the admin API, until interrupted
//	gannet log-level [LEVEL]             show or set the operational log's level, over the admin API
//	gannet reload                        re-read and apply the relay's config (as SIGHUP), over the admin API
//	gannet drain [-off] [-status]        stop taking new mail while delivering the queue (rolling restarts), over the admin API
//	gannet suppress list|add|remove|import FILE|export   the suppression list, over the admin API
//	gannet erase ADDRESS [-no-suppress]  erase an address (GDPR art. 17), over the admin API
//	gannet cluster status                the nodes of the cluster ([cluster]) with their queues and rates, over the admin API
//	gannet events status                 the event sinks ([[event_sink]]): backlog, last success, last error, over the admin API
//	gannet version                       print the version
//	gannet help                          print this help
//
// Each subcommand has its own flag set (the standard flag package); the
// dispatch table in commands lists them, so new ones (queue, bounce,
// dkim-keygen, …) are one entry each.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version or VCS revision from the build info is used.
var version = ""

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "run the relay: serve [-config FILE]", cmdServe},
		{"config", "config tools: config default (print the embedded default config) | config show [-config FILE] [-changed] (the effective config; -changed: what differs from the default)", cmdConfig},
		{"check-config", "check a config file: check-config -config FILE", cmdCheckConfig},
		{"dkim-keygen", "make a DKIM key pair: dkim-keygen -domain D -selector S -algo rsa|ed25519 -out DIR", cmdDKIMKeygen},
		{"queue", "the queue over the admin API: queue summary | queue inspect ID | queue list [filters] | queue bounce|delete|retry|hold|release ID...|-domain D", cmdQueue},
		{"dead", "dead letters: dead list [-domain D] [-since 24h] | dead show ID [-body] | dead requeue|purge ID...|-domain D", cmdDead},
		{"bounce", "bounce queued mail: bounce -domain D [-tenant T] [-campaign C] [-reason R] [-duration D]", cmdBounce},
		{"suspend", "hold mail: suspend -domain D [-tenant T] [-campaign C] [-site S] [-duration D]", cmdSuspend},
		{"resume", "end a suspension: resume ID | resume -domain D …", cmdResume},
		{"tlsrpt", "TLS reports (RFC 8460) over the admin API: tlsrpt list | show DOMAIN [-day D] | send [-day D]", cmdTLSRPT},
		{"trace", "live SMTP conversations: trace server [-peer CIDR] [-listener N] | trace client [-domain D] [-site S]", cmdTrace},
		{"log-level", "the operational log's level: log-level [debug|info|warn|error]", cmdLogLevel},
		{"reload", "re-read the relay's config and apply it, as SIGHUP does: reload (exit 1 and the problems when refused)", cmdReload},
		{"drain", "stop taking new mail, keep delivering (rolling restarts): drain [-off] [-status]", cmdDrain},
		{"suppress", "the suppression list: suppress list [-tenant T|-global] | add|remove ADDRESS [-tenant T] [-reason R] | import FILE [-tenant T] | export [-tenant T|-global] [-o FILE]", cmdSuppress},
		{"erase", "erase an address (GDPR art. 17): its queued and dead-lettered mail, suppressed, log files named: erase ADDRESS [-no-suppress]", cmdErase},
		{"backoff", "the sites in backoff mode: backoff [-site S] | backoff -end SITE (back to normal)", cmdBackoff},
		{"cluster", "the cluster's nodes ([cluster] redis) with their queue depths and rates: cluster status", cmdCluster},
		{"events", "the event sinks ([[event_sink]]): backlog, shipped, last success and last error: events status", cmdEvents},
		{"xfer", "hand queued mail to another node over SMTP (before retiring this one): xfer -to NODE|host:port -domain D [-tenant T] [-campaign C] [-site S] | xfer -list | xfer -cancel ID", cmdXfer},
		{"version", "print the version", cmdVersion},
		{"help", "print this help", cmdHelp},
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the subcommand named by args[0] and returns the exit status:
// 0 success, 1 failure, 2 bad usage.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "gannet: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Gannet, an outbound SMTP relay.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: gannet COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'gannet COMMAND -h' for the flags of a command.")
}

func cmdHelp(args []string, stdout, stderr io.Writer) int {
	usage(stdout)
	return 0
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stdout, "gannet", versionString())
	return 0
}

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v = s.Value[:12]
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v + " " + bi.GoVersion
}

// newFlags returns a flag set for a subcommand that prints its usage to
// stderr and reports errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gannet %s\n", synopsis)
		if strings.Contains(synopsis, "-") {
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args and returns the exit status to use when the
// command should stop (-1 to go on): 0 after -h, 2 after a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	return -1
}
