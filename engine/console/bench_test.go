package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"gannet/engine/httpapi"
	"gannet/engine/logrec"
)

// BenchmarkOverview renders the overview with 1,000,000 messages queued
// and 10,000 sites (synthetic state through Live, a full hour of
// history, a full ring of recent records): the target is < 100 ms. The
// overview reads no message: its cost is that of the sites and the fixed
// history.
//
//	go test -run '^$' -bench Overview -benchtime 20x ./engine/console/
func BenchmarkOverview(b *testing.B) {
	const queued, sites = 1_000_000, 10_000
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	live := &fakeLive{depth: Depth{Scheduled: queued * 8 / 10, Ready: queued / 10, Suspended: queued / 20, Dead: queued / 20}}
	for i := range sites {
		p := Path{Site: fmt.Sprintf("mx%05d.example", i), Ready: queued / 10 / sites * (1 + i%7), InFlight: i % 5,
			Rate: float64(i % 50), ConnLimit: 10, Connections: i % 10}
		if i%97 == 0 {
			p.Throttled, p.Reason = true, "421 4.7.0 too many messages, slow down"
		}
		live.paths = append(live.paths, p)
	}
	h := new(History)
	for i := range HistoryLen {
		h.Add(Snapshot{Received: uint64(i * 5000), Delivered: uint64(i * 4900), Transient: uint64(i * 50),
			ConnsIn: 200, ConnsOut: 800, Depth: live.depth}, now.Add(time.Duration(i-HistoryLen)*Resolution), 0.8, 12)
	}
	r := NewRecent(func() time.Time { return now })
	for i := range RecentRecords {
		r.Record(record(logrec.Delivery, fmt.Sprint("m", i), fmt.Sprintf("u%d@d%d.example", i, i%sites), fmt.Sprintf("mx%05d.example", i%sites), 250, "ok", now))
	}
	c := New(Options{API: http.NotFoundHandler(), Live: live, History: h, Recent: r, Now: func() time.Time { return now }})
	ctx := httpapi.WithCaller(context.Background(), httpapi.Caller{Addr: netip.MustParseAddr("127.0.0.1"), Trusted: true})
	req := httptest.NewRequest("GET", "/console/", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	c.ServeHTTP(w, req) // the trusted host's session
	cookie := w.Result().Cookies()[0]
	req.AddCookie(cookie)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
