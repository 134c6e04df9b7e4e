package engine

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"gannet/engine/admin"
	"gannet/engine/mtasts"
	"gannet/engine/outbound"
	"gannet/engine/tlsrpt"
	"gannet/mailaddr"
	"gannet/queue"
)

// This file wires TLS reporting (RFC 8460, engine/tlsrpt) into the relay:
// outbound delivery tells the store of every TLS session (its
// TLSObserver), failed MTA-STS policy fetches are counted too, and the
// Sender sends each day's reports once the day is over, mail reports
// through Gannet's own queue, DKIM-signed when a key for the sender's
// domain exists. Only with MX delivery ([delivery] relay_to unset).
// Sessions to a domain whose MTA-STS policy could not be fetched are
// failures of its "sts" policy (sts-policy-fetch-error, sts-policy-invalid,
// sts-webpki-invalid). Sessions with an MX host under DANE are counted
// under a "tlsa" policy per MX host: its TLSA records as policy-string,
// the host as mx-host.

// tlsrptDir is where the counts are kept: in the spool directory.
func tlsrptDir(spoolPath string) string { return filepath.Join(spoolPath, "tlsrpt") }

// tlsReports is the engine's TLS reporting: the store and the sender.
type tlsReports struct {
	store  *tlsrpt.Store
	sender *tlsrpt.Sender
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// buildTLSRPT makes the store (before outbound, which reports to it).
func (e *Engine) buildTLSRPT() error {
	if e.resolver == nil {
		return nil
	}
	st, err := tlsrpt.NewStore(tlsrpt.StoreOptions{
		Dir:         tlsrptDir(e.cfg.Spool.Path),
		Now:         e.now,
		OnSaveError: func(err error) { e.log.Error("TLS-RPT counts not saved", "err", err) },
	})
	if err != nil && st == nil {
		return fmt.Errorf("TLS-RPT counts: %w", err)
	}
	if err != nil {
		e.log.Warn("TLS-RPT counts ignored; counting starts afresh", "err", err)
	}
	r := &tlsReports{store: st}
	r.sender = tlsrpt.NewSender(tlsrpt.SenderOptions{
		Store:    st,
		Resolver: e.resolver,
		Mail:     e.sendReportMail,
		Meta:     e.tlsrptMeta,
		RootCAs:  func() *x509.CertPool { return e.policy().roots },
		Enabled:  func() bool { return e.conf().TLS.TLSRPT },
		Now:      e.now,
		Logger:   e.log.With("part", "tlsrpt"),
	})
	e.tlsrpt = r
	return nil
}

// startTLSRPT starts the daily sending (after the queue is loaded).
func (e *Engine) startTLSRPT() {
	if e.tlsrpt == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.tlsrpt.cancel = cancel
	e.tlsrpt.wg.Add(1)
	go func() {
		defer e.tlsrpt.wg.Done()
		e.tlsrpt.sender.Run(ctx)
	}()
}

// stopTLSRPT stops the sending and writes the counts a last time.
func (e *Engine) stopTLSRPT() error {
	if e.tlsrpt == nil {
		return nil
	}
	if e.tlsrpt.cancel != nil {
		e.tlsrpt.cancel()
	}
	e.tlsrpt.wg.Wait()
	return e.tlsrpt.store.Close()
}

// tlsrptMeta is who the reports come from, from the configuration in force.
func (e *Engine) tlsrptMeta() tlsrpt.SenderMeta {
	c := e.conf()
	ehlo := strings.TrimSuffix(c.Delivery.EHLOName, ".")
	m := tlsrpt.SenderMeta{Organization: c.TLS.TLSRPTOrganization, Contact: c.TLS.TLSRPTContact, From: c.TLS.TLSRPTSender}
	if m.From == "" {
		m.From = "postmaster@" + ehlo
	}
	if m.Organization == "" {
		m.Organization = ehlo
	}
	if m.Contact == "" {
		m.Contact = m.From
	}
	m.Submitter = strings.ToLower(mailaddr.Domain(m.From))
	return m
}

// sendReportMail is the Sender's Mail: the report message is DKIM-signed
// with the keys of the sender's domain, spooled as Gannet's own message
// (like a DSN, engine/delivery_policy.go sendBounce: no policy, no
// Reception record) and queued for delivery like any other.
func (e *Engine) sendReportMail(from, to string, msg []byte) error {
	if s := e.dkimSigners(); s != nil {
		sigs, err := s.Sign(msg, []string{mailaddr.Domain(from)})
		if err != nil {
			return fmt.Errorf("DKIM: %w", err)
		}
		if len(sigs) > 0 {
			msg = append(sigs, msg...)
		}
	}
	m := &queue.Message{
		ID:         e.ids.Next(),
		From:       from,
		Recipients: []queue.Recipient{{Addr: to}},
		Priority:   1,
		Created:    e.now(),
	}
	if err := e.appendToSpool(m, msg); err != nil {
		return err
	}
	e.enqueue(m)
	e.log.Info("TLS report queued", "id", m.ID, "to", to)
	return nil
}

// ObserveTLS is outbound.Options.TLSObserver: the session is counted for
// the reports (when [tls] tlsrpt is on).
func (r *tlsReports) observe(e *Engine, s outbound.TLSSession) {
	if !e.conf().TLS.TLSRPT {
		return
	}
	if s.From != "" && strings.EqualFold(s.From, e.tlsrptMeta().From) {
		// RFC 8460 §5.3: the session that carries a report is not counted
		// in the next one (nor a connection opened for Gannet's reports).
		return
	}
	r.store.Observe(reportSession(s))
}

// reportSession is what the store counts of an outbound session: under its
// DANE TLSA records, its MTA-STS policy (or the one that could not be
// fetched), or no policy.
func reportSession(s outbound.TLSSession) tlsrpt.Session {
	ss := tlsrpt.Session{
		Domain:      s.Domain,
		PolicyType:  tlsrpt.PolicyNoPolicyFound,
		ResultType:  s.ResultType,
		SendingIP:   s.Local,
		ReceivingIP: s.Peer.Addr(),
		ReceivingMX: s.Host,
	}
	switch {
	case s.DANE:
		// RFC 8460 §4.4: the MX host's TLSA records; the policy domain is
		// the destination domain, mx-host the MX host they apply to.
		ss.PolicyType = tlsrpt.PolicyTLSA
		ss.PolicyString = s.TLSA
		ss.MXHost = []string{strings.ToLower(strings.TrimSuffix(s.Host, "."))}
	case s.STS.Mode != outbound.STSNone:
		ss.PolicyType = tlsrpt.PolicySTS
		ss.Domain = s.STS.Domain
		if p, ok := s.STS.Hosts.(*mtasts.Policy); ok {
			ss.PolicyString, ss.MXHost = stsPolicyStrings(p)
		}
	case s.STS.FetchFailure != "":
		// A policy the domain publishes but that could not be fetched:
		// reported under "sts", without its lines (§4.3.2.2).
		ss.PolicyType = tlsrpt.PolicySTS
	}
	if s.Err != nil {
		ss.ReasonCode = reasonCode(s.Err)
	}
	return ss
}

// tlsObserver adapts the engine to outbound.TLSObserver.
type tlsObserver struct{ e *Engine }

func (o tlsObserver) ObserveTLS(s outbound.TLSSession) {
	if o.e.tlsrpt != nil {
		o.e.tlsrpt.observe(o.e, s)
	}
}

// stsPolicyStrings returns an MTA-STS policy as the report's policy-string
// (its lines, RFC 8460 §4.4) and mx-host (its mx patterns).
func stsPolicyStrings(p *mtasts.Policy) (lines, mx []string) {
	lines = []string{"version: STSv1", "mode: " + p.Mode.String()}
	for _, m := range p.MX {
		lines = append(lines, "mx: "+m)
	}
	lines = append(lines, "max_age: "+strconv.FormatInt(p.MaxAge, 10))
	return lines, append([]string(nil), p.MX...)
}

// reasonCode is a failure's failure-reason-code: its text, one line, at
// most 128 bytes.
func reasonCode(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// fetchResultType is the RFC 8460 result type (§4.3.2.2) of a failed
// MTA-STS policy fetch: sts-webpki-invalid when the policy server's
// certificate did not verify, sts-policy-invalid when the file did not
// parse, sts-policy-fetch-error otherwise.
func fetchResultType(result string, err error) string {
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cie x509.CertificateInvalidError
	switch {
	case result == mtasts.FetchInvalid:
		return tlsrpt.ResultSTSPolicyInvalid
	case errors.As(err, &uae), errors.As(err, &he), errors.As(err, &cie):
		return tlsrpt.ResultSTSWebPKIInvalid
	}
	return tlsrpt.ResultSTSPolicyFetchError
}

// tlsReportsAdmin is admin.TLSReports over the engine's TLS reporting.
type tlsReportsAdmin struct{ e *Engine }

func (a tlsReportsAdmin) List() []tlsrpt.DaySummary { return a.e.tlsrpt.store.List() }

func (a tlsReportsAdmin) Show(day, domain string) (admin.TLSReportDetail, bool) {
	counts, rep, ok := a.e.tlsrpt.store.Counts(day, domain)
	if !ok {
		return admin.TLSReportDetail{}, false
	}
	meta := a.e.tlsrptMeta()
	id := ""
	if rep != nil {
		id = rep.ReportID
	}
	r, err := tlsrpt.Build(tlsrpt.Meta{OrganizationName: meta.Organization, ContactInfo: meta.Contact, ReportID: id}, day, counts)
	if err != nil {
		return admin.TLSReportDetail{}, false
	}
	return admin.TLSReportDetail{Day: day, Domain: counts.Domain, Counts: counts, Report: rep, JSON: r}, true
}

func (a tlsReportsAdmin) SendNow(ctx context.Context, day string) error {
	return a.e.tlsrpt.sender.SendNow(ctx, day)
}
