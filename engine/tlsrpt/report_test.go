package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// schema is testdata/report.schema.json, the report of §4 as JSON Schema.
type schema struct {
	Type       string             `json:"type"`
	Required   []string           `json:"required"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	Enum       []string           `json:"enum"`
	Pattern    string             `json:"pattern"`
	Minimum    *float64           `json:"minimum"`
}

// checkSchema checks v (decoded JSON) against s: the subset of JSON Schema
// the file uses (types, required, no other properties, enums, patterns,
// minimums).
func checkSchema(s *schema, v any, path string) error {
	if s.Enum != nil {
		str, ok := v.(string)
		for _, e := range s.Enum {
			if ok && str == e {
				return nil
			}
		}
		return fmt.Errorf("%s: %v is not one of %v", path, v, s.Enum)
	}
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object", path)
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				return fmt.Errorf("%s: %q missing", path, r)
			}
		}
		for k, vv := range m {
			ps := s.Properties[k]
			if ps == nil {
				return fmt.Errorf("%s: unknown property %q", path, k)
			}
			if err := checkSchema(ps, vv, path+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: not an array", path)
		}
		for i, vv := range a {
			if err := checkSchema(s.Items, vv, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: not a string", path)
		}
		if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
			return fmt.Errorf("%s: %q does not match %s", path, str, s.Pattern)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: %v is not an integer", path, v)
		}
		if s.Minimum != nil && f < *s.Minimum {
			return fmt.Errorf("%s: %v < %v", path, f, *s.Minimum)
		}
	}
	return nil
}

func loadSchema(t *testing.T) *schema {
	t.Helper()
	b, err := os.ReadFile("testdata/report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// sampleCounts counts a day's sessions of one domain under two policies.
func sampleCounts(t *testing.T) *DomainCounts {
	t.Helper()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	st, err := NewStore(StoreOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sts := Session{Domain: "Example.TEST.", PolicyType: PolicySTS,
		PolicyString: []string{"version: STSv1", "mode: testing", "mx: mx.example.test", "max_age: 86400"},
		MXHost:       []string{"mx.example.test"}}
	for range 3 {
		st.Observe(sts)
	}
	bad := sts
	bad.ResultType, bad.ReceivingMX, bad.ReasonCode = ResultCertHostMismatch, "mx2.example.test.", "x509: certificate is valid for other.test"
	bad.SendingIP, bad.ReceivingIP = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::ffff:127.0.0.3")
	st.Observe(bad)
	st.Observe(bad)
	st.Observe(Session{Domain: "example.test", ResultType: ResultSTARTTLSNotSupported, ReceivingMX: "mx3.example.test"})
	c, _, ok := st.Counts("2026-12-07", "example.test")
	if !ok {
		t.Fatal("nothing counted")
	}
	return c
}

// TestBuildReport: the report has the counts given, the fields of §4.4, and
// matches the schema; its gzip reads back to the same JSON.
func TestBuildReport(t *testing.T) {
	r, err := Build(Meta{OrganizationName: "Gannet Test", ContactInfo: "postmaster@relay.test", ReportID: "r1@relay.test"},
		"2026-12-07", sampleCounts(t))
	if err != nil {
		t.Fatal(err)
	}
	j, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(j, &v)
	if err := checkSchema(loadSchema(t), v, "report"); err != nil {
		t.Errorf("schema: %v\n%s", err, j)
	}
	if len(r.Policies) != 2 || r.Policies[0].Policy.PolicyType != PolicyNoPolicyFound || r.Policies[1].Policy.PolicyType != PolicySTS {
		t.Fatalf("policies: %s", j)
	}
	p := r.Policies[1]
	if p.Summary.TotalSuccessfulSessionCount != 3 || p.Summary.TotalFailureSessionCount != 2 || len(p.FailureDetails) != 1 {
		t.Errorf("sts policy: %+v", p)
	}
	fd := p.FailureDetails[0]
	if fd.ResultType != ResultCertHostMismatch || fd.ReceivingMXHostname != "mx2.example.test" || fd.ReceivingIP != "127.0.0.3" ||
		fd.SendingMTAIP != "127.0.0.1" || fd.FailedSessionCount != 2 || p.Policy.PolicyDomain != "example.test" {
		t.Errorf("failure detail: %+v", fd)
	}
	if r.DateRange.StartDatetime.Format(time.RFC3339) != "2026-12-07T00:00:00Z" || r.DateRange.EndDatetime.Format(time.RFC3339) != "2026-12-07T23:59:59Z" {
		t.Errorf("date-range %+v", r.DateRange)
	}
	gz, err := r.Gzip()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(zr)
	if !bytes.Equal(back, j) {
		t.Error("gzip does not read back to the JSON")
	}
	if n := r.FileName("relay.test", "example.test"); n != "relay.test!example.test!1796601600!1796687999.json.gz" {
		t.Errorf("file name %q", n)
	}
	// The same with Python's jsonschema, when it is there.
	if py, err := exec.LookPath("/usr/bin/python3"); err == nil && exec.Command(py, "-c", "import jsonschema").Run() == nil {
		f := filepath.Join(t.TempDir(), "r.json")
		os.WriteFile(f, j, 0o600)
		out, err := exec.Command(py, "-c", `import json,sys,jsonschema
jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))`, "testdata/report.schema.json", f).CombinedOutput()
		if err != nil {
			t.Errorf("jsonschema: %v\n%s", err, out)
		}
	}
}

// TestBuildEmptyDay: a bad day is an error; a domain with no policies has
// an empty policies array, not null.
func TestBuildEmptyDay(t *testing.T) {
	if _, err := Build(Meta{}, "2026-13-01", &DomainCounts{}); err == nil {
		t.Error("bad day accepted")
	}
	r, err := Build(Meta{}, "2026-12-07", &DomainCounts{Domain: "x.test"})
	j, _ := r.JSON()
	if err != nil || !bytes.Contains(j, []byte(`"policies": []`)) {
		t.Errorf("%s %v", j, err)
	}
}

// TestBuildReportTLSA: sessions under DANE make one "tlsa" policy per MX
// host, with its TLSA records as policy-string, the host as mx-host and
// the destination as policy-domain (§4.4); successes and failures by their
// DANE result types are counted, and the report matches the schema.
func TestBuildReportTLSA(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	st, err := NewStore(StoreOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mx1 := Session{Domain: "dane.test", PolicyType: PolicyTLSA,
		PolicyString: []string{"3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		MXHost:       []string{"mx1.dane.test"}, SendingIP: netip.MustParseAddr("192.0.2.1"),
		ReceivingIP: netip.MustParseAddr("198.51.100.1"), ReceivingMX: "mx1.dane.test"}
	st.Observe(mx1)
	st.Observe(mx1)
	bad := mx1
	bad.ResultType, bad.ReasonCode = ResultTLSAInvalid, "no TLSA record matches the certificate of mx1.dane.test"
	st.Observe(bad)
	mx2 := Session{Domain: "dane.test", PolicyType: PolicyTLSA,
		PolicyString: []string{"2 0 1 aa", "3 1 1 bb"}, MXHost: []string{"mx2.dane.test"},
		ResultType: ResultDNSSECInvalid, ReceivingMX: "mx2.dane.test", ReasonCode: "TLSA lookup for _25._tcp.mx2.dane.test failed: SERVFAIL"}
	st.Observe(mx2)
	mx3 := Session{Domain: "dane.test", PolicyType: PolicyTLSA, MXHost: []string{"mx3.dane.test"},
		ResultType: ResultDANERequired, ReceivingMX: "mx3.dane.test", ReceivingIP: netip.MustParseAddr("198.51.100.3")}
	st.Observe(mx3)
	c, _, ok := st.Counts("2026-12-07", "dane.test")
	if !ok {
		t.Fatal("nothing counted")
	}
	r, err := Build(Meta{OrganizationName: "Gannet Test", ContactInfo: "postmaster@relay.test", ReportID: "r2@relay.test"}, "2026-12-07", c)
	if err != nil {
		t.Fatal(err)
	}
	j, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(j, &v)
	if err := checkSchema(loadSchema(t), v, "report"); err != nil {
		t.Errorf("schema: %v\n%s", err, j)
	}
	if len(r.Policies) != 3 {
		t.Fatalf("policies: %s", j)
	}
	byMX := map[string]PolicyReport{}
	for _, p := range r.Policies {
		if p.Policy.PolicyType != PolicyTLSA || p.Policy.PolicyDomain != "dane.test" || len(p.Policy.MXHost) != 1 {
			t.Errorf("policy %+v", p.Policy)
			continue
		}
		byMX[p.Policy.MXHost[0]] = p
	}
	p := byMX["mx1.dane.test"]
	if p.Summary.TotalSuccessfulSessionCount != 2 || p.Summary.TotalFailureSessionCount != 1 || len(p.FailureDetails) != 1 ||
		len(p.Policy.PolicyString) != 1 || p.Policy.PolicyString[0] != mx1.PolicyString[0] {
		t.Errorf("mx1: %+v", p)
	} else if fd := p.FailureDetails[0]; fd.ResultType != ResultTLSAInvalid || fd.ReceivingIP != "198.51.100.1" || fd.SendingMTAIP != "192.0.2.1" ||
		fd.ReceivingMXHostname != "mx1.dane.test" || fd.FailedSessionCount != 1 {
		t.Errorf("mx1 failure detail: %+v", fd)
	}
	p = byMX["mx2.dane.test"]
	if p.Summary.TotalSuccessfulSessionCount != 0 || p.Summary.TotalFailureSessionCount != 1 || len(p.Policy.PolicyString) != 2 ||
		len(p.FailureDetails) != 1 || p.FailureDetails[0].ResultType != ResultDNSSECInvalid || p.FailureDetails[0].ReceivingIP != "" {
		t.Errorf("mx2: %+v", p)
	}
	p = byMX["mx3.dane.test"]
	if p.Summary.TotalFailureSessionCount != 1 || p.Policy.PolicyString != nil ||
		len(p.FailureDetails) != 1 || p.FailureDetails[0].ResultType != ResultDANERequired {
		t.Errorf("mx3: %+v", p)
	}
	// The same with Python's jsonschema, when it is there.
	if py, err := exec.LookPath("/usr/bin/python3"); err == nil && exec.Command(py, "-c", "import jsonschema").Run() == nil {
		f := filepath.Join(t.TempDir(), "r.json")
		os.WriteFile(f, j, 0o600)
		out, err := exec.Command(py, "-c", `import json,sys,jsonschema
jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))`, "testdata/report.schema.json", f).CombinedOutput()
		if err != nil {
			t.Errorf("jsonschema: %v\n%s", err, out)
		}
	}
}
