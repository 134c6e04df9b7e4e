package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"gannet/engine/admin"
	"gannet/engine/trace"
)

// cmdTrace is "gannet trace server [-peer CIDR] [-listener N]" and "gannet
// trace client [-domain D] [-site S]": the live SMTP conversations of the
// matching sessions, in (a client talking to a listener) or out (Gannet
// talking to an MX host), as KumoMTA's kcli trace-smtp-server and
// trace-smtp-client, until interrupted. The stream is
// GET /api/admin/trace/v1/server|client (NDJSON); -json prints it as it
// comes.
func cmdTrace(args []string, stdout, stderr io.Writer) int {
	const synopsis = "trace server [-peer CIDR] [-listener NAME] | trace client [-domain D] [-site S]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("trace", synopsis, stderr)
	c := addAPIFlags(fs)
	peer := fs.String("peer", "", "server: only sessions from this `CIDR` (or address)")
	listener := fs.String("listener", "", "server: only sessions on this [[smtp_listener]] `name`")
	domain := fs.String("domain", "", "client: only sessions carrying mail to this destination `domain`")
	site := fs.String("site", "", "client: only sessions to MX sites whose name contains `S`")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 || (pos[0] != "server" && pos[0] != "client") {
		fs.Usage()
		return 2
	}
	q := url.Values{}
	path := admin.PathTraceServer
	if pos[0] == "server" {
		if *domain != "" || *site != "" {
			fmt.Fprintln(stderr, "gannet trace server: -domain and -site go with trace client")
			return 2
		}
		setIf(q, "peer", *peer)
		setIf(q, "listener", *listener)
	} else {
		if *peer != "" || *listener != "" {
			fmt.Fprintln(stderr, "gannet trace client: -peer and -listener go with trace server")
			return 2
		}
		path = admin.PathTraceClient
		setIf(q, "domain", *domain)
		setIf(q, "site", *site)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := c.stream(ctx, path, q, func(line []byte) error {
		if c.json {
			_, err := stdout.Write(append(line, '\n'))
			return err
		}
		var ev trace.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("the trace stream is not what this gannet expects: %w", err)
		}
		_, err := io.WriteString(stdout, formatEvent(&ev))
		return err
	})
	if err != nil && ctx.Err() == nil {
		return fail(stderr, "trace", err)
	}
	return 0
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// formatEvent writes one trace event as text: the time, the session
// ("in#3" for a client of a listener, "out#7" for a delivery session),
// and the line: "C: " before what the client sent, "S: " before what the
// server answered (each line of a reply), "== " before the rest.
func formatEvent(ev *trace.Event) string {
	var b strings.Builder
	head := ev.Time.Format("15:04:05.000") + " "
	if ev.Kind == trace.Dropped {
		return head + fmt.Sprintf("!! %d trace events dropped: this reader was too slow\n", ev.Dropped)
	}
	dir := "in"
	if ev.Side == trace.Client {
		dir = "out"
	}
	head += fmt.Sprintf("%s#%d ", dir, ev.Session)
	if ev.Dropped > 0 {
		fmt.Fprintf(&b, "%s!! %d trace events dropped before this one: this reader was too slow\n", head, ev.Dropped)
	}
	switch ev.Kind {
	case trace.Command:
		b.WriteString(head + "C: " + ev.Text + "\n")
	case trace.Reply:
		for _, l := range strings.Split(ev.Text, "\n") {
			b.WriteString(head + "S: " + strings.TrimRight(l, "\r") + "\n")
		}
	case trace.Body:
		b.WriteString(head + "C: [" + ev.Text + "]\n")
	case trace.Connect:
		where := ""
		switch {
		case ev.Listen != "":
			where = " (listener " + ev.Listen + ")"
		case ev.Site != "":
			where = " (site " + ev.Site
			if ev.Domain != "" {
				where += ", domain " + ev.Domain
			}
			where += ")"
		}
		b.WriteString(head + "== " + ev.Text + where + "\n")
	default:
		b.WriteString(head + "== " + string(ev.Kind) + ": " + ev.Text + "\n")
	}
	return b.String()
}

// stream GETs path and calls fn with each line of the answer (an NDJSON
// stream) until the answer ends, fn fails or ctx is done. No timeout: a
// trace runs until interrupted.
func (c *apiClient) stream(ctx context.Context, path string, query url.Values, fn func(line []byte) error) error {
	if c.key == "" {
		c.key = os.Getenv("GANNET_API_KEY")
	}
	if err := c.resolveAPI(); err != nil {
		return err
	}
	base, err := url.Parse(c.api)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("bad -api URL %q: want http://host:port", c.api)
	}
	u := base.JoinPath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	hc := c.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach the admin API at %s: %w", c.api, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e admin.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &apiError{status: resp.StatusCode, msg: e.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue // heartbeat
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the relay ended the trace (it is stopping)")
}

// cmdLogLevel is "gannet log-level [LEVEL]": prints the operational log's
// level, or sets it (debug, info, warn, error) until the next reload
// (GET and POST /api/admin/log-level/v1).
func cmdLogLevel(args []string, stdout, stderr io.Writer) int {
	const synopsis = "log-level [debug|info|warn|error]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("log-level", synopsis, stderr)
	c := addAPIFlags(fs)
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	var r admin.LogLevelResponse
	var ok bool
	var err error
	switch len(pos) {
	case 0:
		ok, err = c.call(stdout, http.MethodGet, admin.PathLogLevel, nil, nil, &r)
	case 1:
		ok, err = c.call(stdout, http.MethodPost, admin.PathLogLevel, nil, admin.LogLevelRequest{Level: pos[0]}, &r)
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		return fail(stderr, "log-level", err)
	}
	if ok {
		fmt.Fprintf(stdout, "log level: %s\n", r.Level)
	}
	return 0
}
