package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Policy types (RFC 8460 §4.3, "policy-type").
const (
	PolicySTS           = "sts"             // an MTA-STS policy (RFC 8461)
	PolicyTLSA          = "tlsa"            // DANE TLSA records (RFC 7672) of one MX host
	PolicyNoPolicyFound = "no-policy-found" // neither
)

// Result types (RFC 8460 §4.3, "result-type").
const (
	// §4.3.1, negotiation failures.
	ResultSTARTTLSNotSupported = "starttls-not-supported"
	ResultCertHostMismatch     = "certificate-host-mismatch"
	ResultCertExpired          = "certificate-expired"
	ResultCertNotTrusted       = "certificate-not-trusted"
	ResultValidationFailure    = "validation-failure"
	// §4.3.2.1, DANE.
	ResultTLSAInvalid   = "tlsa-invalid"
	ResultDNSSECInvalid = "dnssec-invalid"
	ResultDANERequired  = "dane-required"
	// §4.3.2.2, MTA-STS.
	ResultSTSPolicyFetchError = "sts-policy-fetch-error"
	ResultSTSPolicyInvalid    = "sts-policy-invalid"
	ResultSTSWebPKIInvalid    = "sts-webpki-invalid"
)

// ResultTypes lists every result type of §4.3, for label caps and checks.
var ResultTypes = []string{
	ResultSTARTTLSNotSupported, ResultCertHostMismatch, ResultCertExpired,
	ResultCertNotTrusted, ResultValidationFailure, ResultTLSAInvalid,
	ResultDNSSECInvalid, ResultDANERequired, ResultSTSPolicyFetchError,
	ResultSTSPolicyInvalid, ResultSTSWebPKIInvalid,
}

// KnownResultType reports whether s is one of ResultTypes.
func KnownResultType(s string) bool {
	for _, r := range ResultTypes {
		if r == s {
			return true
		}
	}
	return false
}

// Report is the JSON report of §4 (field names as in §4.4 and the schema
// of Appendix B).
type Report struct {
	OrganizationName string         `json:"organization-name"`
	DateRange        DateRange      `json:"date-range"`
	ContactInfo      string         `json:"contact-info"`
	ReportID         string         `json:"report-id"`
	Policies         []PolicyReport `json:"policies"`
}

// DateRange is the period the report covers (RFC 3339 date-times).
type DateRange struct {
	StartDatetime time.Time `json:"start-datetime"`
	EndDatetime   time.Time `json:"end-datetime"`
}

// PolicyReport is one policy's counts.
type PolicyReport struct {
	Policy         PolicyDesc      `json:"policy"`
	Summary        Summary         `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// PolicyDesc is the policy that applied (§4.4 "policy").
type PolicyDesc struct {
	PolicyType   string   `json:"policy-type"`
	PolicyString []string `json:"policy-string,omitempty"`
	PolicyDomain string   `json:"policy-domain"`
	MXHost       []string `json:"mx-host,omitempty"`
}

// Summary counts sessions (§4.4 "summary").
type Summary struct {
	TotalSuccessfulSessionCount int64 `json:"total-successful-session-count"`
	TotalFailureSessionCount    int64 `json:"total-failure-session-count"`
}

// FailureDetail is one kind of failure (§4.4 "failure-details").
type FailureDetail struct {
	ResultType            string `json:"result-type"`
	SendingMTAIP          string `json:"sending-mta-ip,omitempty"`
	ReceivingMXHostname   string `json:"receiving-mx-hostname,omitempty"`
	ReceivingMXHelo       string `json:"receiving-mx-helo,omitempty"`
	ReceivingIP           string `json:"receiving-ip,omitempty"`
	FailedSessionCount    int64  `json:"failed-session-count"`
	AdditionalInformation string `json:"additional-information,omitempty"`
	FailureReasonCode     string `json:"failure-reason-code,omitempty"`
}

// Meta is what a report says of its sender.
type Meta struct {
	OrganizationName string // "organization-name"
	ContactInfo      string // "contact-info"
	ReportID         string // "report-id"
}

// DayRange returns the date-range of the UTC day (start inclusive, end the
// last second: 00:00:00Z to 23:59:59Z, as §4.4's example).
func DayRange(day string) (DateRange, error) {
	start, err := time.Parse(DayFormat, day)
	if err != nil {
		return DateRange{}, fmt.Errorf("bad day %q: want YYYY-MM-DD", day)
	}
	return DateRange{StartDatetime: start.UTC(), EndDatetime: start.UTC().Add(24*time.Hour - time.Second)}, nil
}

// DayFormat is how days are named: "2006-01-02", UTC.
const DayFormat = "2006-01-02"

// Day returns the UTC day of t.
func Day(t time.Time) string { return t.UTC().Format(DayFormat) }

// Build makes the report of one policy domain for one day from its counts.
// It is pure: the policies come out sorted (type, then policy string) and
// their failure details by count, largest first, then by their fields.
func Build(meta Meta, day string, counts *DomainCounts) (*Report, error) {
	dr, err := DayRange(day)
	if err != nil {
		return nil, err
	}
	r := &Report{OrganizationName: meta.OrganizationName, DateRange: dr, ContactInfo: meta.ContactInfo,
		ReportID: meta.ReportID, Policies: []PolicyReport{}}
	for _, pc := range counts.Policies {
		pr := PolicyReport{
			Policy:  PolicyDesc{PolicyType: pc.Type, PolicyString: pc.Strings, PolicyDomain: counts.Domain, MXHost: pc.MX},
			Summary: Summary{TotalSuccessfulSessionCount: pc.Success, TotalFailureSessionCount: pc.Failure},
		}
		for _, d := range pc.Details {
			pr.FailureDetails = append(pr.FailureDetails, FailureDetail{
				ResultType: d.ResultType, SendingMTAIP: d.SendingIP, ReceivingMXHostname: d.ReceivingMX,
				ReceivingIP: d.ReceivingIP, FailedSessionCount: d.Count, AdditionalInformation: d.Info,
				FailureReasonCode: d.ReasonCode,
			})
		}
		sort.SliceStable(pr.FailureDetails, func(i, j int) bool {
			a, b := pr.FailureDetails[i], pr.FailureDetails[j]
			if a.FailedSessionCount != b.FailedSessionCount {
				return a.FailedSessionCount > b.FailedSessionCount
			}
			return detailKey(a) < detailKey(b)
		})
		r.Policies = append(r.Policies, pr)
	}
	sort.SliceStable(r.Policies, func(i, j int) bool {
		a, b := r.Policies[i].Policy, r.Policies[j].Policy
		if a.PolicyType != b.PolicyType {
			return a.PolicyType < b.PolicyType
		}
		return strings.Join(a.PolicyString, "\n") < strings.Join(b.PolicyString, "\n")
	})
	return r, nil
}

func detailKey(d FailureDetail) string {
	return d.ResultType + "\x00" + d.ReceivingMXHostname + "\x00" + d.ReceivingIP + "\x00" + d.SendingMTAIP + "\x00" + d.FailureReasonCode
}

// JSON returns the report as JSON.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// Gzip returns the report as gzip'd JSON (§5.1: "application/tlsrpt+gzip").
func (r *Report) Gzip() ([]byte, error) {
	j, err := r.JSON()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(j); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FileName is the report's file name (§5.1):
//
//	sender "!" policy-domain "!" begin-timestamp "!" end-timestamp [ "!" unique-id ] "." extension
//
// with Unix timestamps and extension "json.gz".
func (r *Report) FileName(sender, domain string) string {
	return fmt.Sprintf("%s!%s!%d!%d.json.gz", sender, domain, r.DateRange.StartDatetime.Unix(), r.DateRange.EndDatetime.Unix())
}
