package tlsrpt

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// StoreFile is the name of the file, in StoreOptions.Dir, that keeps the
// counts and the reports' state across restarts.
const StoreFile = "tlsrpt.json"

// Defaults of StoreOptions.
const (
	DefaultMaxDomains  = 10000 // policy domains counted per day
	DefaultMaxPolicies = 8     // policies per domain per day (a policy that changes mid-day makes two; under DANE each MX host has its own)
	DefaultMaxDetails  = 100   // failure-details rows per policy
	DefaultKeepDays    = 14    // days kept after they end
	DefaultFlushEvery  = 5 * time.Second
)

// Session is one TLS session (or attempt) with an MX address, as outbound
// delivery reports it.
type Session struct {
	// Domain is the policy domain: the destination domain whose MX the
	// session was with.
	Domain string
	// PolicyType is PolicySTS, PolicyTLSA or PolicyNoPolicyFound; with it
	// PolicyString (the policy, one string per line, §4.4: an MTA-STS
	// policy's lines, or the TLSA records in presentation form) and MXHost
	// (the MTA-STS policy's mx patterns, or for TLSA the MX host whose
	// records they are) name the policy.
	PolicyType   string
	PolicyString []string
	MXHost       []string
	// ResultType is "" for a successful session, else one of ResultTypes.
	ResultType string
	// SendingIP, ReceivingIP and ReceivingMX are the failure's addresses
	// (§4.4); zero or "" when unknown.
	SendingIP   netip.Addr
	ReceivingIP netip.Addr
	ReceivingMX string
	// Info ("additional-information") and ReasonCode
	// ("failure-reason-code") say more of a failure. Rows are keyed by
	// ReasonCode, not Info: Info is the first one seen.
	Info       string
	ReasonCode string
}

// DomainCounts are the counts of one policy domain for one day.
type DomainCounts struct {
	Domain   string          `json:"domain"`
	Policies []*PolicyCounts `json:"policies"`
}

// PolicyCounts are the counts under one policy.
type PolicyCounts struct {
	Type    string         `json:"policy-type"`
	Strings []string       `json:"policy-string,omitempty"`
	MX      []string       `json:"mx-host,omitempty"`
	Success int64          `json:"successful"`
	Failure int64          `json:"failed"`
	Details []*DetailCount `json:"failure-details,omitempty"`
	// Undetailed counts failures whose detail row did not fit
	// (StoreOptions.MaxDetails); they are in Failure all the same.
	Undetailed int64 `json:"undetailed,omitempty"`
}

// DetailCount is one failure-details row.
type DetailCount struct {
	ResultType  string `json:"result-type"`
	SendingIP   string `json:"sending-mta-ip,omitempty"`
	ReceivingMX string `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP string `json:"receiving-ip,omitempty"`
	ReasonCode  string `json:"failure-reason-code,omitempty"`
	Info        string `json:"additional-information,omitempty"`
	Count       int64  `json:"count"`
}

// Report states (SentReport.Status).
const (
	StatusPending  = "pending"   // being sent, or a delivery waits for a retry
	StatusSent     = "sent"      // every address took it
	StatusPartial  = "partial"   // some addresses took it, the others gave up
	StatusFailed   = "failed"    // no address took it
	StatusNoRecord = "no-record" // the domain publishes no (valid) TLSRPT record
)

// SentReport is what became of one domain's report for one day.
type SentReport struct {
	ReportID   string      `json:"report_id,omitempty"`
	Status     string      `json:"status"`
	Built      time.Time   `json:"built"`
	Successful int64       `json:"successful"`
	Failed     int64       `json:"failed"`
	Error      string      `json:"error,omitempty"` // why there is no record
	Deliveries []*Delivery `json:"deliveries,omitempty"`
}

// Delivery is the sending of one report to one rua address.
type Delivery struct {
	URI      string    `json:"uri"`
	Attempts int       `json:"attempts"`
	Done     bool      `json:"done"`            // taken (https: 2xx; mailto: queued)
	GaveUp   bool      `json:"gave_up"`         // no more attempts
	Sent     time.Time `json:"sent,omitzero"`   // when taken
	Next     time.Time `json:"next,omitzero"`   // next attempt
	Error    string    `json:"error,omitempty"` // the last failure
}

// DayState is one UTC day: its counts and its reports.
type DayState struct {
	Domains map[string]*DomainCounts `json:"domains"`
	// DroppedDomains counts sessions of domains past MaxDomains.
	DroppedDomains int64 `json:"dropped_domains,omitempty"`
	// Due is when the day's reports are to be sent (zero until the day ends).
	Due     time.Time              `json:"due,omitzero"`
	Reports map[string]*SentReport `json:"reports,omitempty"`
	Done    bool                   `json:"done,omitempty"` // every report sent or given up
}

// StoreOptions configure a Store.
type StoreOptions struct {
	// Dir holds StoreFile; "" keeps the counts in memory only.
	Dir         string
	MaxDomains  int // DefaultMaxDomains when 0
	MaxPolicies int // DefaultMaxPolicies when 0
	MaxDetails  int // DefaultMaxDetails when 0
	KeepDays    int // DefaultKeepDays when 0
	// FlushEvery: the file is written at most this often while counts
	// change (DefaultFlushEvery when 0), and at Close.
	FlushEvery  time.Duration
	OnSaveError func(error)
	Now         func() time.Time // time.Now
}

// Store counts TLS sessions per day and policy domain. It is safe for
// concurrent use.
type Store struct {
	opts StoreOptions

	mu    sync.Mutex
	days  map[string]*DayState
	dirty bool

	saveMu sync.Mutex
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type storeFile struct {
	Version int                  `json:"version"`
	Days    map[string]*DayState `json:"days"`
}

// NewStore returns a Store with the counts of StoreOptions.Dir's file. A
// file that cannot be read is reported in the error but a usable Store is
// returned all the same (counting starts afresh); a nil Store comes only
// with an error that the directory cannot be made.
func NewStore(opts StoreOptions) (*Store, error) {
	if opts.MaxDomains <= 0 {
		opts.MaxDomains = DefaultMaxDomains
	}
	if opts.MaxPolicies <= 0 {
		opts.MaxPolicies = DefaultMaxPolicies
	}
	if opts.MaxDetails <= 0 {
		opts.MaxDetails = DefaultMaxDetails
	}
	if opts.KeepDays <= 0 {
		opts.KeepDays = DefaultKeepDays
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultFlushEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{opts: opts, days: map[string]*DayState{}, stop: make(chan struct{}), done: make(chan struct{})}
	var loadErr error
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, err
		}
		loadErr = s.load()
	}
	go s.flushLoop()
	return s, loadErr
}

func (s *Store) load() error {
	b, err := os.ReadFile(filepath.Join(s.opts.Dir, StoreFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var f storeFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: %w", StoreFile, err)
	}
	if f.Version != 1 {
		return fmt.Errorf("%s: unknown version %d", StoreFile, f.Version)
	}
	for d, st := range f.Days {
		if _, err := time.Parse(DayFormat, d); err != nil || st == nil {
			continue
		}
		if st.Domains == nil {
			st.Domains = map[string]*DomainCounts{}
		}
		s.days[d] = st
	}
	return nil
}

// Observe counts one session under the day it ends in (UTC).
func (s *Store) Observe(ss Session) {
	domain := strings.ToLower(strings.TrimSuffix(ss.Domain, "."))
	if domain == "" {
		return
	}
	if ss.PolicyType == "" {
		ss.PolicyType = PolicyNoPolicyFound
	}
	day := Day(s.opts.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.days[day]
	if st == nil {
		st = &DayState{Domains: map[string]*DomainCounts{}}
		s.days[day] = st
	}
	s.dirty = true
	dc := st.Domains[domain]
	if dc == nil {
		if len(st.Domains) >= s.opts.MaxDomains {
			st.DroppedDomains++
			return
		}
		dc = &DomainCounts{Domain: domain}
		st.Domains[domain] = dc
		st.Done = false // a day sent early (SendNow) has a report to make
	}
	var pc *PolicyCounts
	for _, p := range dc.Policies {
		if p.Type == ss.PolicyType && slices.Equal(p.Strings, ss.PolicyString) && slices.Equal(p.MX, ss.MXHost) {
			pc = p
			break
		}
	}
	if pc == nil {
		if len(dc.Policies) >= s.opts.MaxPolicies {
			pc = dc.Policies[len(dc.Policies)-1] // counted under the last one rather than lost
		} else {
			pc = &PolicyCounts{Type: ss.PolicyType, Strings: slices.Clone(ss.PolicyString), MX: slices.Clone(ss.MXHost)}
			dc.Policies = append(dc.Policies, pc)
		}
	}
	if ss.ResultType == "" {
		pc.Success++
		return
	}
	pc.Failure++
	row := DetailCount{ResultType: ss.ResultType, ReceivingMX: strings.TrimSuffix(ss.ReceivingMX, "."), ReasonCode: ss.ReasonCode}
	if ss.SendingIP.IsValid() {
		row.SendingIP = ss.SendingIP.Unmap().String()
	}
	if ss.ReceivingIP.IsValid() {
		row.ReceivingIP = ss.ReceivingIP.Unmap().String()
	}
	for _, d := range pc.Details {
		if d.ResultType == row.ResultType && d.SendingIP == row.SendingIP && d.ReceivingMX == row.ReceivingMX &&
			d.ReceivingIP == row.ReceivingIP && d.ReasonCode == row.ReasonCode {
			d.Count++
			return
		}
	}
	if len(pc.Details) >= s.opts.MaxDetails {
		pc.Undetailed++
		return
	}
	row.Info = ss.Info
	if len(row.Info) > 256 {
		row.Info = row.Info[:256]
	}
	row.Count = 1
	pc.Details = append(pc.Details, &row)
}

// DaySummary is one day as List shows it.
type DaySummary struct {
	Day            string          `json:"day"`
	Domains        []DomainSummary `json:"domains"`
	DroppedDomains int64           `json:"dropped_domains,omitempty"`
	Due            *time.Time      `json:"due,omitempty"`
	Done           bool            `json:"done"`
}

// DomainSummary is one domain of a day as List shows it.
type DomainSummary struct {
	Domain     string      `json:"domain"`
	Successful int64       `json:"successful"`
	Failed     int64       `json:"failed"`
	Policies   []string    `json:"policies"`
	Report     *SentReport `json:"report,omitempty"`
}

// List returns every day kept, newest first, with each domain's totals
// and report.
func (s *Store) List() []DaySummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DaySummary, 0, len(s.days))
	for day, st := range s.days {
		ds := DaySummary{Day: day, DroppedDomains: st.DroppedDomains, Done: st.Done, Domains: []DomainSummary{}}
		if !st.Due.IsZero() {
			due := st.Due
			ds.Due = &due
		}
		for d, dc := range st.Domains {
			sum := DomainSummary{Domain: d}
			for _, p := range dc.Policies {
				sum.Successful += p.Success
				sum.Failed += p.Failure
				sum.Policies = append(sum.Policies, p.Type)
			}
			if r := st.Reports[d]; r != nil {
				sum.Report = r.clone()
			}
			ds.Domains = append(ds.Domains, sum)
		}
		sort.Slice(ds.Domains, func(i, j int) bool { return ds.Domains[i].Domain < ds.Domains[j].Domain })
		out = append(out, ds)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day > out[j].Day })
	return out
}

// Counts returns a copy of a domain's counts on day, and its report's
// state (nil when none was made yet).
func (s *Store) Counts(day, domain string) (*DomainCounts, *SentReport, bool) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.days[day]
	if st == nil {
		return nil, nil, false
	}
	dc := st.Domains[domain]
	if dc == nil {
		return nil, nil, false
	}
	var rep *SentReport
	if r := st.Reports[domain]; r != nil {
		rep = r.clone()
	}
	return dc.clone(), rep, true
}

func (dc *DomainCounts) clone() *DomainCounts {
	out := &DomainCounts{Domain: dc.Domain}
	for _, p := range dc.Policies {
		cp := *p
		cp.Strings = slices.Clone(p.Strings)
		cp.MX = slices.Clone(p.MX)
		cp.Details = nil
		for _, d := range p.Details {
			dd := *d
			cp.Details = append(cp.Details, &dd)
		}
		out.Policies = append(out.Policies, &cp)
	}
	return out
}

func (r *SentReport) clone() *SentReport {
	cp := *r
	cp.Deliveries = nil
	for _, d := range r.Deliveries {
		dd := *d
		cp.Deliveries = append(cp.Deliveries, &dd)
	}
	return &cp
}

// prune forgets the days that ended more than KeepDays ago; s.mu held.
func (s *Store) prune(now time.Time) {
	cutoff := Day(now.AddDate(0, 0, -s.opts.KeepDays))
	for d := range s.days {
		if d < cutoff {
			delete(s.days, d)
			s.dirty = true
		}
	}
}

func (s *Store) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		dirty := s.dirty
		s.mu.Unlock()
		if dirty {
			s.report(s.Save())
		}
	}
}

func (s *Store) report(err error) {
	if err != nil && s.opts.OnSaveError != nil {
		s.opts.OnSaveError(err)
	}
}

// Close stops the background writes and writes the file a last time.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		err = s.Save()
	})
	return err
}

// Save writes the file now: to a temporary file in the same directory,
// synced, then renamed over the old one, so that a crash leaves either the
// old file or the new one.
func (s *Store) Save() error {
	if s.opts.Dir == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	s.prune(s.opts.Now())
	b, err := json.Marshal(&storeFile{Version: 1, Days: s.days})
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.opts.Dir, StoreFile+".*.tmp")
	if err != nil {
		s.markDirty()
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		s.markDirty()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		s.markDirty()
		return err
	}
	if err := tmp.Close(); err != nil {
		s.markDirty()
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.opts.Dir, StoreFile)); err != nil {
		s.markDirty()
		return err
	}
	if d, err := os.Open(s.opts.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (s *Store) markDirty() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
}
