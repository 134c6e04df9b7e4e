package tlsrpt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Resolver is the DNS the Sender needs (resolver.Resolver has it): the
// "_smtp._tls.DOMAIN" TXT records and the addresses of https: report hosts.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// SenderMeta is who sends the reports (from the configuration in force).
type SenderMeta struct {
	Organization string // "organization-name"
	Contact      string // "contact-info"
	From         string // the mailto: reports' sender address
	Submitter    string // the reporting domain (TLS-Report-Submitter, file names)
}

// Defaults of SenderOptions.
const (
	DefaultMaxDelay    = 4 * time.Hour
	DefaultTick        = time.Minute
	DefaultPostTimeout = 30 * time.Second
	DefaultMaxAttempts = 5
	DefaultRetryAfter  = 10 * time.Minute
	// MaxReportSize bounds a gzip'd report: larger ones are not sent
	// (StoreOptions' caps keep reports far below it).
	MaxReportSize = 4 << 20
)

// SenderOptions configure a Sender.
type SenderOptions struct {
	Store    *Store
	Resolver Resolver
	// Mail hands a mailto: report message to the queue (from, to, the
	// message with CRLF line ends); nil: mailto: addresses are skipped.
	Mail func(from, to string, msg []byte) error
	Meta func() SenderMeta
	// RootCAs verifies the https: report servers; nil: the system roots.
	RootCAs func() *x509.CertPool
	// Delay is how long after a day ends its reports go out (§4.1: at a
	// random time, so that not every sender posts at midnight). Nil: a
	// random time within DefaultMaxDelay.
	Delay       func() time.Duration
	Tick        time.Duration // how often due reports are looked for (DefaultTick)
	PostTimeout time.Duration // one https: POST, all in (DefaultPostTimeout)
	MaxAttempts int           // per address (DefaultMaxAttempts)
	RetryAfter  time.Duration // before the 2nd attempt, doubled after each (DefaultRetryAfter)
	// Enabled, when set, is asked before each round ([tls] tlsrpt, after
	// a reload); false sends nothing (counting goes on).
	Enabled func() bool
	// OnSend, when set, is told of every attempt to send a report.
	OnSend func(domain, uri string, err error)
	Now    func() time.Time
	Logger *slog.Logger
}

// Sender sends each day's reports once the day is over. Run runs it;
// SendNow sends a day's reports at once.
type Sender struct {
	opts SenderOptions
	log  *slog.Logger
	mu   sync.Mutex // one round at a time
}

// NewSender returns a Sender.
func NewSender(opts SenderOptions) *Sender {
	if opts.Delay == nil {
		opts.Delay = func() time.Duration {
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(DefaultMaxDelay)))
			return time.Duration(n.Int64())
		}
	}
	if opts.Tick <= 0 {
		opts.Tick = DefaultTick
	}
	if opts.PostTimeout <= 0 {
		opts.PostTimeout = DefaultPostTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Meta == nil {
		opts.Meta = func() SenderMeta { return SenderMeta{} }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{opts: opts, log: log}
}

// Run sends due reports every Tick until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.opts.Enabled != nil && !s.opts.Enabled() {
			continue
		}
		s.RunDue(ctx)
	}
}

// RunDue sends the reports that are due now: those of the days that have
// ended, once their random delay has passed, and the retries whose time
// has come.
func (s *Sender) RunDue(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	today := Day(now)
	st := s.opts.Store
	var due []string
	st.mu.Lock()
	for day, ds := range st.days {
		if day >= today || ds.Done {
			continue
		}
		start, _ := time.Parse(DayFormat, day)
		if end := start.Add(24 * time.Hour); ds.Due.Before(end) {
			// Not scheduled yet, or sent early by SendNow (the sessions
			// counted since are reported once the day is over).
			ds.Due = end.Add(s.opts.Delay())
			st.dirty = true
		}
		if !now.Before(ds.Due) {
			due = append(due, day)
		}
	}
	st.mu.Unlock()
	sort.Strings(due)
	for _, day := range due {
		s.sendDay(ctx, day, false)
	}
}

// SendNow sends the reports of day at once, whether or not the day has
// ended (an admin's or a test's "send now"): the domains without a report
// get one, and the deliveries waiting for a retry are tried again. The
// counts of the day after this are not reported again (the day's reports
// are made).
func (s *Sender) SendNow(ctx context.Context, day string) error {
	if _, err := time.Parse(DayFormat, day); err != nil {
		return fmt.Errorf("bad day %q: want YYYY-MM-DD", day)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.opts.Store
	st.mu.Lock()
	ds := st.days[day]
	if ds != nil {
		ds.Due = s.opts.Now()
		ds.Done = false
		st.dirty = true
	}
	st.mu.Unlock()
	if ds == nil {
		return fmt.Errorf("nothing counted on %s", day)
	}
	s.sendDay(ctx, day, true)
	return st.Save()
}

// sendDay makes the missing reports of day and tries their deliveries
// that are due (all when force).
func (s *Sender) sendDay(ctx context.Context, day string, force bool) {
	st := s.opts.Store
	now := s.opts.Now()
	st.mu.Lock()
	ds := st.days[day]
	if ds == nil { // pruned meanwhile (Store.Save forgets old days)
		st.mu.Unlock()
		return
	}
	var domains []string
	for d := range ds.Domains {
		domains = append(domains, d)
	}
	st.mu.Unlock()
	sort.Strings(domains)
	for _, d := range domains {
		if ctx.Err() != nil {
			return
		}
		st.mu.Lock()
		rep := ds.Reports[d]
		if rep == nil {
			st.mu.Unlock()
			rep = s.newReport(ctx, d, now)
			st.mu.Lock()
			if ds.Reports == nil {
				ds.Reports = map[string]*SentReport{}
			}
			ds.Reports[d] = rep
			st.dirty = true
		}
		var todo []*Delivery
		for _, dl := range rep.Deliveries {
			if !dl.Done && !dl.GaveUp && (force || !now.Before(dl.Next)) {
				todo = append(todo, dl)
			}
		}
		id := rep.ReportID
		st.mu.Unlock()
		if len(todo) == 0 {
			continue
		}
		counts, _, ok := st.Counts(day, d)
		if !ok {
			continue
		}
		meta := s.opts.Meta()
		r, err := Build(Meta{OrganizationName: meta.Organization, ContactInfo: meta.Contact, ReportID: id}, day, counts)
		var gz []byte
		if err == nil {
			gz, err = r.Gzip()
		}
		if err == nil && len(gz) > MaxReportSize {
			err = fmt.Errorf("report of %d bytes is over %d", len(gz), MaxReportSize)
		}
		for _, dl := range todo {
			var serr error
			if err != nil {
				serr = err
			} else {
				serr = s.deliver(ctx, dl.URI, d, r, gz, meta)
			}
			if s.opts.OnSend != nil {
				s.opts.OnSend(d, dl.URI, serr)
			}
			st.mu.Lock()
			dl.Attempts++
			if serr == nil {
				dl.Done, dl.Sent, dl.Error, dl.Next = true, s.opts.Now(), "", time.Time{}
			} else {
				dl.Error = serr.Error()
				if dl.Attempts >= s.opts.MaxAttempts {
					dl.GaveUp, dl.Next = true, time.Time{}
				} else {
					dl.Next = s.opts.Now().Add(s.opts.RetryAfter << (dl.Attempts - 1))
				}
			}
			st.dirty = true
			st.mu.Unlock()
			if serr != nil {
				s.log.Warn("TLS report not sent", "domain", d, "day", day, "uri", dl.URI, "attempt", dl.Attempts, "err", serr)
			} else {
				s.log.Info("TLS report sent", "domain", d, "day", day, "uri", dl.URI, "report_id", id)
			}
		}
	}
	// The day is done when every report is final.
	st.mu.Lock()
	done := true
	for d := range ds.Domains {
		rep := ds.Reports[d]
		if rep == nil {
			done = false
			continue
		}
		rep.Status = reportStatus(rep)
		if rep.Status == StatusPending {
			done = false
		}
	}
	ds.Done = done
	st.dirty = true
	st.mu.Unlock()
}

func reportStatus(rep *SentReport) string {
	if rep.Status == StatusNoRecord {
		return StatusNoRecord
	}
	sent, gaveUp := 0, 0
	for _, d := range rep.Deliveries {
		switch {
		case d.Done:
			sent++
		case d.GaveUp:
			gaveUp++
		}
	}
	switch {
	case sent+gaveUp < len(rep.Deliveries):
		return StatusPending
	case gaveUp == 0:
		return StatusSent
	case sent == 0:
		return StatusFailed
	}
	return StatusPartial
}

// newReport looks up the domain's TLSRPT record and makes its report's
// state: an id and one delivery per rua address.
func (s *Sender) newReport(ctx context.Context, domain string, now time.Time) *SentReport {
	rep := &SentReport{Built: now}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	txts, err := s.opts.Resolver.LookupTXT(lctx, "_smtp._tls."+domain)
	cancel()
	var rec Record
	if err == nil {
		rec, err = SelectRecord(txts)
	}
	if err != nil {
		// §3: no record (or not one valid one): the domain wants no reports.
		rep.Status, rep.Error = StatusNoRecord, err.Error()
		return rep
	}
	var b [8]byte
	rand.Read(b[:])
	meta := s.opts.Meta()
	rep.ReportID = now.UTC().Format("20060102T150405Z") + "." + hex.EncodeToString(b[:]) + "@" + meta.Submitter
	rep.Status = StatusPending
	for _, u := range rec.RUA {
		if MailtoAddress(u) != "" && s.opts.Mail == nil {
			continue
		}
		rep.Deliveries = append(rep.Deliveries, &Delivery{URI: u})
	}
	if len(rep.Deliveries) == 0 {
		rep.Status, rep.Error = StatusNoRecord, "no usable rua address"
	}
	return rep
}

// deliver sends one report to one address.
func (s *Sender) deliver(ctx context.Context, uri, domain string, r *Report, gz []byte, meta SenderMeta) error {
	if to := MailtoAddress(uri); to != "" {
		var b [12]byte
		rand.Read(b[:])
		tag := hex.EncodeToString(b[:])
		msg, err := BuildMail(&MailReport{
			From: meta.From, To: to, Domain: domain, Submitter: meta.Submitter, ReportID: r.ReportID,
			Date: s.opts.Now(), MessageID: "tlsrpt." + tag + "@" + meta.Submitter,
			Boundary: "=_tlsrpt_" + tag, FileName: r.FileName(meta.Submitter, domain), Gzip: gz,
		})
		if err != nil {
			return err
		}
		return s.opts.Mail(meta.From, to, msg)
	}
	return s.post(ctx, uri, gz)
}

// post sends the report to an https: address (§5.4): POST with
// Content-Type application/tlsrpt+gzip, the server's certificate verified,
// the host resolved by Gannet's resolver, no redirects, the whole exchange
// bounded by PostTimeout; any 2xx is success.
func (s *Sender) post(ctx context.Context, uri string, gz []byte) error {
	u, err := url.Parse(uri)
	if err != nil || !strings.EqualFold(u.Scheme, "https") {
		return fmt.Errorf("not an https: address: %q", uri)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.PostTimeout)
	defer cancel()
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "443"
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = s.opts.Resolver.LookupAddrs(ctx, host); err != nil {
		return fmt.Errorf("%s: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s has no address", host)
	}
	var roots *x509.CertPool
	if s.opts.RootCAs != nil {
		roots = s.opts.RootCAs()
	}
	dialer := &net.Dialer{Timeout: s.opts.PostTimeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var last error
			for _, a := range addrs {
				c, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(a.String(), port))
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
		TLSClientConfig:       &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   s.opts.PostTimeout,
		ResponseHeaderTimeout: s.opts.PostTimeout,
		DisableKeepAlives:     true,
		Proxy:                 nil,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(string(gz)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/tlsrpt+gzip")
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return uerr.Err
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return nil
}
