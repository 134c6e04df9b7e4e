package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gannet/engine/admin"
	"gannet/engine/suppress"
)

// cmdSuppress is "gannet suppress list|add|remove|import FILE|export": the
// suppression list over the admin API (/api/admin/suppression/v1).
func cmdSuppress(args []string, stdout, stderr io.Writer) int {
	const synopsis = "suppress list [-tenant T|-global] [-address A] [-limit N] [-after CURSOR] | add ADDRESS [-tenant T] [-reason R] | remove ADDRESS [-tenant T] | import FILE|- [-tenant T] | export [-tenant T|-global] [-o FILE]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("suppress", synopsis, stderr)
	c := addAPIFlags(fs)
	tenant := fs.String("tenant", "", "the `tenant` whose list (add, remove: without it, the global list)")
	global := fs.Bool("global", false, "list, export: only the global list")
	address := fs.String("address", "", "list: only addresses containing this `text`")
	reason := fs.String("reason", "", "add: why (kept with the entry)")
	limit := fs.Int("limit", 100, "list: entries per page")
	after := fs.String("after", "", "list: the page after this `cursor` (the next of the previous page)")
	out := fs.String("o", "", "export: write to this `FILE` (default: stdout)")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) == 0 {
		fs.Usage()
		return 2
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		q := url.Values{}
		setNonEmpty(q, "tenant", *tenant)
		setNonEmpty(q, "address", *address)
		setNonEmpty(q, "after", *after)
		if *global {
			q.Set("global", "true")
		}
		q.Set("limit", fmt.Sprint(*limit))
		var r admin.SuppressionListResponse
		ok, err := c.call(stdout, http.MethodGet, admin.PathSuppression, q, nil, &r)
		if err != nil {
			return fail(stderr, "suppress list", err)
		}
		if ok {
			printEntries(stdout, r)
		}
		return 0
	case (pos[0] == "add" || pos[0] == "remove") && len(pos) == 2:
		req := admin.SuppressionEntryRequest{Tenant: *tenant, Address: pos[1], Reason: *reason}
		if pos[0] == "add" {
			var r admin.SuppressionAddResponse
			ok, err := c.call(stdout, http.MethodPost, admin.PathSuppression, nil, req, &r)
			if err != nil {
				return fail(stderr, "suppress add", err)
			}
			if ok {
				fmt.Fprintf(stdout, "suppressed %s for %s\n", r.Entry.Address, listName(r.Entry.Tenant))
			}
			return 0
		}
		var r admin.SuppressionRemoveResponse
		ok, err := c.call(stdout, http.MethodDelete, admin.PathSuppression, nil, req, &r)
		if err != nil {
			return fail(stderr, "suppress remove", err)
		}
		if ok && !r.Removed {
			fmt.Fprintf(stdout, "%s was not on %s\n", pos[1], listName(*tenant))
		} else if ok {
			fmt.Fprintf(stdout, "removed %s from %s\n", pos[1], listName(*tenant))
		}
		return 0
	case pos[0] == "import" && len(pos) == 2:
		return suppressImport(c, pos[1], *tenant, stdout, stderr)
	case pos[0] == "export" && len(pos) == 1:
		q := url.Values{}
		setNonEmpty(q, "tenant", *tenant)
		if *global {
			q.Set("global", "true")
		}
		return suppressExport(c, q, *out, stdout, stderr)
	}
	fs.Usage()
	return 2
}

func setNonEmpty(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func listName(tenant string) string {
	if tenant == "" {
		return "the global list"
	}
	return "tenant " + tenant
}

func printEntries(w io.Writer, r admin.SuppressionListResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tTENANT\tSOURCE\tCREATED\tEXPIRES\tREASON")
	for _, e := range r.Entries {
		t := e.Tenant
		if t == "" {
			t = "(global)"
		}
		exp := "never"
		if !e.Expires.IsZero() {
			exp = e.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Address, t, e.Source, e.Created.UTC().Format(time.RFC3339), exp, e.Reason)
	}
	tw.Flush()
	if r.Next != "" {
		fmt.Fprintf(w, "more: -after %q\n", r.Next)
	}
}

// suppressImport streams FILE ("-": stdin) to the import endpoint.
func suppressImport(c *apiClient, file, tenant string, stdout, stderr io.Writer) int {
	var in io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fail(stderr, "suppress import", err)
		}
		defer f.Close()
		in = f
	}
	q := url.Values{}
	setNonEmpty(q, "tenant", tenant)
	resp, cancel, err := c.rawRequest(http.MethodPost, admin.PathSuppressionImport, q, in, "text/csv")
	if err != nil {
		return fail(stderr, "suppress import", err)
	}
	defer cancel()
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(stderr, "suppress import", err)
	}
	if c.json {
		stdout.Write(data)
		return 0
	}
	var r suppress.ImportResult
	if err := json.Unmarshal(data, &r); err != nil {
		return fail(stderr, "suppress import", fmt.Errorf("the API's answer is not what this gannet expects: %w", err))
	}
	fmt.Fprintf(stdout, "imported %d entries from %d lines; %d lines refused\n", r.Added, r.Lines, r.Failed)
	for _, e := range r.Errors {
		fmt.Fprintln(stdout, "  "+e)
	}
	if r.Failed > len(r.Errors) {
		fmt.Fprintf(stdout, "  … and %d more\n", r.Failed-len(r.Errors))
	}
	return 0
}

// suppressExport copies the export endpoint's CSV to out ("" stdout).
func suppressExport(c *apiClient, q url.Values, out string, stdout, stderr io.Writer) int {
	resp, cancel, err := c.rawRequest(http.MethodGet, admin.PathSuppressionExport, q, nil, "")
	if err != nil {
		return fail(stderr, "suppress export", err)
	}
	defer cancel()
	defer resp.Body.Close()
	w := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fail(stderr, "suppress export", err)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fail(stderr, "suppress export", err)
	}
	return 0
}

// cmdErase is "gannet erase ADDRESS [-no-suppress]": an erasure request
// (GDPR art. 17) over the admin API (POST /api/admin/erase/v1).
func cmdErase(args []string, stdout, stderr io.Writer) int {
	const synopsis = "erase ADDRESS [-no-suppress]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("erase", synopsis, stderr)
	c := addAPIFlags(fs)
	noSuppress := fs.Bool("no-suppress", false, "do not add the address to the global suppression list")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	var r admin.EraseResponse
	ok, err := c.call(stdout, http.MethodPost, admin.PathErase, nil, admin.EraseRequest{Address: pos[0], NoSuppress: *noSuppress}, &r)
	if err != nil {
		return fail(stderr, "erase", err)
	}
	if !ok {
		return 0
	}
	fmt.Fprintf(stdout, "address sha256: %s\n", r.AddressSHA256)
	fmt.Fprintf(stdout, "queued: %d messages (%d recipients) removed\n", r.QueuedMessages, r.QueuedRecipients)
	fmt.Fprintf(stdout, "dead letters: %d purged\n", r.DeadLetters)
	if r.Suppressed {
		fmt.Fprintln(stdout, "suppressed: on the global suppression list")
	} else {
		fmt.Fprintln(stdout, "suppressed: no (-no-suppress)")
	}
	if len(r.LogFilesMentioned) == 0 {
		fmt.Fprintln(stdout, "log files mentioning it: none")
	} else {
		fmt.Fprintf(stdout, "log files mentioning it (%d):\n", len(r.LogFilesMentioned))
		for _, f := range r.LogFilesMentioned {
			fmt.Fprintln(stdout, "  "+f)
		}
	}
	return 0
}

// rawRequest sends one request with a raw body (nil: none) and returns the
// answer of a 2xx for its body to be read as a stream; cancel ends the
// request's timeout once the body is read.
func (c *apiClient) rawRequest(method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, context.CancelFunc, error) {
	if c.key == "" {
		c.key = os.Getenv("GANNET_API_KEY")
	}
	if err := c.resolveAPI(); err != nil {
		return nil, nil, err
	}
	base, err := url.Parse(c.api)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, nil, fmt.Errorf("bad -api URL %q: want http://host:port", c.api)
	}
	u := base.JoinPath(path)
	u.RawQuery = query.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	hc := c.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("cannot reach the admin API at %s: %w", c.api, err)
	}
	if resp.StatusCode/100 != 2 {
		defer cancel()
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e admin.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, nil, &apiError{status: resp.StatusCode, msg: e.Error, body: data}
	}
	return resp, cancel, nil
}
