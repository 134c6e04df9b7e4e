package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gannet/engine"
	"gannet/engine/admin"
	"gannet/engine/config"
)

// The admin CLI (queue, bounce, suspend, resume) talks to a running relay
// over its HTTP admin API (engine/admin), like KumoMTA's kcli: nothing is
// read from the spool directly, so it works against a remote relay and
// never races the daemon.

// defaultAPI is the admin API of the embedded default config.
const defaultAPI = "http://127.0.0.1:8000"

// apiClient is the shared part of the admin commands: where the API is, the
// key, and whether to print raw JSON.
type apiClient struct {
	api     string
	config  string // -config: take the API address from this configuration
	key     string
	json    bool
	timeout time.Duration
	hc      *http.Client
}

// addAPIFlags adds -api, -key, -json and -timeout to fs.
func addAPIFlags(fs *flag.FlagSet) *apiClient {
	c := &apiClient{}
	fs.StringVar(&c.api, "api", "", "base `URL` of the HTTP admin API (default: $GANNET_API, else the -config file's, else "+defaultAPI+")")
	fs.StringVar(&c.config, "config", "", "read the admin API's address from this gannet config `FILE` (its first [[http_listener]] serving admin)")
	fs.StringVar(&c.key, "key", "", "bearer API `key` (default: $GANNET_API_KEY)")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON answer as it is")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "how long to wait for the answer")
	return c
}

// apiError is a refusal from the API (or an answer we cannot read).
type apiError struct {
	status int
	msg    string
	body   []byte // the answer as it came
}

func (e *apiError) Error() string {
	return fmt.Sprintf("the API answered %d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

// do sends one request and returns the raw JSON answer of a 2xx; errors
// say whether the API could not be reached or refused.
func (c *apiClient) do(method, path string, query url.Values, body any) ([]byte, error) {
	if c.key == "" {
		c.key = os.Getenv("GANNET_API_KEY")
	}
	if err := c.resolveAPI(); err != nil {
		return nil, err
	}
	base, err := url.Parse(c.api)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("bad -api URL %q: want http://host:port", c.api)
	}
	u := base.JoinPath(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
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
		return nil, fmt.Errorf("cannot reach the admin API at %s: %w", c.api, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		var e admin.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
			if len(e.Error) > 300 {
				e.Error = e.Error[:300] + "…"
			}
		}
		return nil, &apiError{status: resp.StatusCode, msg: e.Error, body: data}
	}
	return data, nil
}

// call runs a request and decodes its answer into out, unless -json asks
// for the answer as it is (then printed to stdout and out untouched). It
// reports whether out was filled.
func (c *apiClient) call(stdout io.Writer, method, path string, query url.Values, body, out any) (bool, error) {
	data, err := c.do(method, path, query, body)
	if err != nil {
		return false, err
	}
	if c.json {
		stdout.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			io.WriteString(stdout, "\n")
		}
		return false, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return false, fmt.Errorf("the API's answer is not what this gannet expects: %w", err)
	}
	return true, nil
}

// fail prints err for command name and returns exit status 1.
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "gannet %s: %v\n", name, err)
	return 1
}

// parseInterleaved parses flags that may come before and after positional
// arguments ("queue inspect ID -json") and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, int) {
	var pos []string
	for {
		if st := parseFlags(fs, args); st >= 0 {
			return nil, st
		}
		if fs.NArg() == 0 {
			return pos, -1
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// resolveAPI settles where the admin API is: -api, else $GANNET_API, else
// the -config file's first [[http_listener]] that serves admin (a
// wildcard listen address is asked on loopback), else defaultAPI.
func (c *apiClient) resolveAPI() error {
	switch {
	case c.api != "":
		return nil
	case os.Getenv("GANNET_API") != "":
		c.api = os.Getenv("GANNET_API")
		return nil
	case c.config == "":
		c.api = defaultAPI
		return nil
	}
	cfg, err := engine.LoadConfig(c.config)
	if err != nil {
		return fmt.Errorf("-config %s: %w", c.config, err)
	}
	for _, l := range cfg.HTTPListeners {
		if !slices.Contains(l.Services, config.ServiceAdmin) {
			continue
		}
		host, port, err := net.SplitHostPort(l.Listen)
		if err != nil {
			return fmt.Errorf("-config %s: http_listener %q: %w", c.config, l.Listen, err)
		}
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
			if err == nil && ip.Is6() {
				host = "::1"
			}
		}
		c.api = "http://" + net.JoinHostPort(host, port)
		return nil
	}
	return fmt.Errorf("-config %s: no [[http_listener]] serves admin", c.config)
}
