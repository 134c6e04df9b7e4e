package admin

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gannet/engine/httpapi"
	"gannet/engine/tlsrpt"
)

type fakeReports struct{ sent []string }

func (f *fakeReports) List() []tlsrpt.DaySummary {
	return []tlsrpt.DaySummary{{Day: "2026-12-07", Domains: []tlsrpt.DomainSummary{{Domain: "a.test", Successful: 3}}}}
}

func (f *fakeReports) Show(day, domain string) (TLSReportDetail, bool) {
	if domain != "a.test" {
		return TLSReportDetail{}, false
	}
	return TLSReportDetail{Day: day, Domain: domain, Counts: &tlsrpt.DomainCounts{Domain: domain}}, true
}

func (f *fakeReports) SendNow(_ context.Context, day string) error {
	if day == "2026-01-01" {
		return errors.New("nothing counted on 2026-01-01")
	}
	f.sent = append(f.sent, day)
	return nil
}

// TestTLSReportsEndpoint: list, show (404 for a domain not counted, 400
// for a bad day), send now (422 for a day with nothing); a tenant's key is
// refused; without TLS reporting the endpoint is 404.
func TestTLSReportsEndpoint(t *testing.T) {
	fr := &fakeReports{}
	now := func() time.Time { return time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) }
	mk := func(r TLSReports) *world {
		h := New(Options{TLSReports: r, Now: now})
		if r == nil {
			h = New(Options{Now: now})
		}
		return &world{api: httpapi.New(httpapi.Options{
			TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			Services:     []string{httpapi.ServiceAdmin},
			APIKeys: func(b string) (string, bool) {
				if b == "key-acme" {
					return "acme", true
				}
				return "", false
			},
			Admin: h,
		}).Handler()}
	}
	w := mk(fr)
	var l TLSReportList
	if code := w.call(t, "GET", PathTLSReports, "", "", "", &l); code != 200 || !l.Enabled || len(l.Days) != 1 || l.Days[0].Domains[0].Successful != 3 {
		t.Errorf("list: %d %+v", code, l)
	}
	var d TLSReportDetail
	if code := w.call(t, "GET", PathTLSReports+"?domain=a.test", "", "", "", &d); code != 200 || d.Day != "2026-12-07" || d.Domain != "a.test" {
		t.Errorf("show: %d %+v", code, d)
	}
	for target, want := range map[string]int{
		PathTLSReports + "?domain=b.test":               404,
		PathTLSReports + "?domain=a.test&day=yesterday": 400,
	} {
		if code := w.call(t, "GET", target, "", "", "", nil); code != want {
			t.Errorf("GET %s: %d, want %d", target, code, want)
		}
	}
	if code := w.call(t, "POST", PathTLSReports, `{"day":"2026-12-06"}`, "", "", nil); code != 200 || strings.Join(fr.sent, ",") != "2026-12-06" {
		t.Errorf("send: %d %q", code, fr.sent)
	}
	if code := w.call(t, "POST", PathTLSReports, `{}`, "", "", nil); code != 200 || len(fr.sent) != 2 || fr.sent[1] != "2026-12-07" {
		t.Errorf("send today: %d %q", code, fr.sent)
	}
	for body, want := range map[string]int{`{"day":"2026-01-01"}`: 422, `{"day":"x"}`: 422, `{"dya":"2026-12-06"}`: 400} {
		if code := w.call(t, "POST", PathTLSReports, body, "", "", nil); code != want {
			t.Errorf("POST %s: %d, want %d", body, code, want)
		}
	}
	if code := w.call(t, "GET", PathTLSReports, "", "key-acme", "10.0.0.1:1", nil); code != 403 {
		t.Errorf("tenant key: %d, want 403", code)
	}
	if code := mk(nil).call(t, "GET", PathTLSReports, "", "", "", nil); code != 404 {
		t.Errorf("no TLS reporting: %d, want 404", code)
	}
}
