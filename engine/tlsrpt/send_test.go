package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeResolver struct {
	txt   map[string][]string
	addrs map[string][]netip.Addr
}

func (r *fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	return r.txt[name], nil
}

func (r *fakeResolver) LookupAddrs(_ context.Context, host string) ([]netip.Addr, error) {
	if a, ok := r.addrs[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

type sentMail struct{ from, to string }

// TestSenderDaily: a day's reports wait for the day to end and the random
// delay; then the https: address gets a POST of the gzip'd report and the
// mailto: address a §5.3 message; a domain with no record gets nothing;
// a failing address is retried after RetryAfter and given up after
// MaxAttempts; nothing is sent twice.
func TestSenderDaily(t *testing.T) {
	var mu sync.Mutex
	var posts [][]byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/bad" {
			http.Error(w, "no", 500)
			return
		}
		if r.Header.Get("Content-Type") != "application/tlsrpt+gzip" || r.Method != http.MethodPost {
			http.Error(w, "bad request", 400)
			return
		}
		posts = append(posts, body)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	res := &fakeResolver{
		txt: map[string][]string{
			"_smtp._tls.a.test": {"v=TLSRPTv1; rua=https://example.com:" + port + "/r,mailto:tlsrpt@a.test"},
			"_smtp._tls.c.test": {"v=TLSRPTv1; rua=https://example.com:" + port + "/bad"},
		},
		addrs: map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}},
	}
	clk := &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	st, _ := NewStore(StoreOptions{Now: clk.Now})
	defer st.Close()
	st.Observe(Session{Domain: "a.test"})
	st.Observe(Session{Domain: "a.test", ResultType: ResultSTARTTLSNotSupported, ReceivingMX: "mx.a.test"})
	st.Observe(Session{Domain: "b.test"}) // no record
	st.Observe(Session{Domain: "c.test"}) // a failing address

	var mails []sentMail
	var msgs [][]byte
	s := NewSender(SenderOptions{
		Store: st, Resolver: res, Now: clk.Now,
		Delay: func() time.Duration { return 90 * time.Minute },
		Meta: func() SenderMeta {
			return SenderMeta{Organization: "Org", Contact: "pm@relay.test", From: "tlsrpt@relay.test", Submitter: "relay.test"}
		},
		Mail: func(from, to string, msg []byte) error {
			mails = append(mails, sentMail{from, to})
			msgs = append(msgs, msg)
			return nil
		},
		RootCAs:     func() *x509.CertPool { return roots },
		MaxAttempts: 2, RetryAfter: time.Hour,
	})
	ctx := context.Background()
	s.RunDue(ctx)
	if len(posts)+len(mails) != 0 {
		t.Fatal("sent during the day")
	}
	clk.Add(12*time.Hour + 30*time.Minute) // 00:30 next day: before the delay
	s.RunDue(ctx)
	if len(posts)+len(mails) != 0 {
		t.Fatal("sent before the delay")
	}
	clk.Add(time.Hour) // 01:30
	s.RunDue(ctx)
	if len(posts) != 1 || len(mails) != 1 || mails[0].to != "tlsrpt@a.test" || mails[0].from != "tlsrpt@relay.test" {
		t.Fatalf("posts %d mails %+v", len(posts), mails)
	}
	zr, err := gzip.NewReader(bytes.NewReader(posts[0]))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.NewDecoder(zr).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.OrganizationName != "Org" || rep.ContactInfo != "pm@relay.test" || len(rep.Policies) != 1 ||
		rep.Policies[0].Summary != (Summary{1, 1}) || rep.Policies[0].FailureDetails[0].ResultType != ResultSTARTTLSNotSupported {
		t.Errorf("report %+v", rep)
	}
	checkMail(t, msgs[0], rep.ReportID)

	l := st.List()
	reps := map[string]*SentReport{}
	for _, d := range l[0].Domains {
		reps[d.Domain] = d.Report
	}
	if reps["a.test"].Status != StatusSent || reps["b.test"].Status != StatusNoRecord || reps["c.test"].Status != StatusPending {
		t.Errorf("statuses a %+v b %+v c %+v", reps["a.test"], reps["b.test"], reps["c.test"])
	}
	// c.test is retried after RetryAfter, then given up; a.test is not sent again.
	s.RunDue(ctx)
	clk.Add(61 * time.Minute)
	s.RunDue(ctx)
	_, r, _ := st.Counts(l[0].Day, "c.test")
	if r.Status != StatusFailed || r.Deliveries[0].Attempts != 2 || !r.Deliveries[0].GaveUp || !strings.Contains(r.Deliveries[0].Error, "500") {
		t.Errorf("c.test %+v %+v", r, r.Deliveries[0])
	}
	if len(posts) != 1 || len(mails) != 1 {
		t.Errorf("sent again: posts %d mails %d", len(posts), len(mails))
	}
	if d := st.List()[0]; !d.Done {
		t.Errorf("day not done: %+v", d)
	}
}

// checkMail checks the structure of §5.3.
func checkMail(t *testing.T, raw []byte, reportID string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subj := strings.Join(strings.Fields(m.Header.Get("Subject")), " ")
	if subj != "Report Domain: a.test Submitter: relay.test Report-ID: <"+reportID+">" {
		t.Errorf("Subject %q", subj)
	}
	if m.Header.Get("TLS-Report-Domain") != "a.test" || m.Header.Get("TLS-Report-Submitter") != "relay.test" || m.Header.Get("TLS-Required") != "No" {
		t.Errorf("TLS-Report fields: %v", m.Header)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	p1, err := mr.NextPart()
	if err != nil || !strings.HasPrefix(p1.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("part 1: %v %v", p1, err)
	}
	p2, err := mr.NextPart()
	if err != nil || p2.Header.Get("Content-Type") != "application/tlsrpt+gzip" || !strings.HasSuffix(p2.FileName(), ".json.gz") ||
		!strings.HasPrefix(p2.FileName(), "relay.test!a.test!") {
		t.Fatalf("part 2: %v %v", p2.Header, err)
	}
}

// TestSenderSendNow: SendNow sends the day's reports at once; a domain
// first counted after it is reported once the day is over (after the
// delay), and the domains already reported are not sent again.
func TestSenderSendNow(t *testing.T) {
	var mails []string
	res := &fakeResolver{txt: map[string][]string{
		"_smtp._tls.a.test": {"v=TLSRPTv1; rua=mailto:r@a.test"},
		"_smtp._tls.b.test": {"v=TLSRPTv1; rua=mailto:r@b.test"},
	}}
	clk := &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	st, _ := NewStore(StoreOptions{Now: clk.Now})
	defer st.Close()
	s := NewSender(SenderOptions{Store: st, Resolver: res, Now: clk.Now,
		Delay: func() time.Duration { return time.Hour },
		Meta:  func() SenderMeta { return SenderMeta{From: "f@relay.test", Submitter: "relay.test"} },
		Mail:  func(_, to string, _ []byte) error { mails = append(mails, to); return nil },
	})
	ctx := context.Background()
	if err := s.SendNow(ctx, "2026-12-07"); err == nil {
		t.Error("SendNow of a day with nothing counted: no error")
	}
	if err := s.SendNow(ctx, "07/12/2026"); err == nil {
		t.Error("SendNow of a bad day: no error")
	}
	st.Observe(Session{Domain: "a.test"})
	if err := s.SendNow(ctx, "2026-12-07"); err != nil || len(mails) != 1 || mails[0] != "r@a.test" {
		t.Fatalf("SendNow: %v, mails %q", err, mails)
	}
	st.Observe(Session{Domain: "a.test"})
	st.Observe(Session{Domain: "b.test"})
	clk.Add(12*time.Hour + 30*time.Minute) // 00:30: before the delay
	s.RunDue(ctx)
	if len(mails) != 1 {
		t.Fatalf("sent before the delay: %q", mails)
	}
	clk.Add(time.Hour)
	s.RunDue(ctx)
	s.RunDue(ctx)
	if len(mails) != 2 || mails[1] != "r@b.test" {
		t.Errorf("mails %q, want a.test once then b.test", mails)
	}
}

// TestSenderPostRefusals: an https: address whose certificate does not
// verify, or that redirects, has not taken the report.
func TestSenderPostRefusals(t *testing.T) {
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.test/", http.StatusFound)
	}))
	defer redirect.Close()
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer untrusted.Close()
	res := &fakeResolver{addrs: map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}}}
	roots := redirect.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	s := NewSender(SenderOptions{Store: &Store{}, Resolver: res, RootCAs: func() *x509.CertPool { return roots }})
	port := func(srv *httptest.Server) string { u, _ := url.Parse(srv.URL); return u.Port() }
	if err := s.post(context.Background(), "https://example.com:"+port(redirect)+"/r", []byte("x")); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("redirect: %v", err)
	}
	// Without the test roots (the system's only), the certificate does not verify.
	s = NewSender(SenderOptions{Store: &Store{}, Resolver: res})
	if err := s.post(context.Background(), "https://example.com:"+port(untrusted)+"/r", []byte("x")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	if err := s.post(context.Background(), "https://nohost.test/r", []byte("x")); err == nil {
		t.Error("unresolvable host: no error")
	}
}
