package console

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"gannet/engine/admin"
	"gannet/engine/logrec"
)

// writeLog writes recs to log files under a new directory with the real
// log writer, rotating after every rotateEvery records.
func writeLog(t *testing.T, recs []*logrec.Record) string {
	t.Helper()
	dir := t.TempDir()
	w, err := logrec.New(logrec.Options{Dir: dir, MaxFileSize: 1 << 20, MaxFileAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if !w.Write(r) {
			t.Fatal("log writer refused a record")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSearchReadsTheLogFiles: a message whose records have left the
// recent ones is found by recipient from the log files, and its page
// shows every record from its Reception on, merged with the recent ones.
func TestSearchReadsTheLogFiles(t *testing.T) {
	tc := newTestConsole(t)
	old := tc.now.Add(-3 * time.Hour)
	var recs []*logrec.Record
	for i := range 300 {
		rcpt := fmt.Sprintf("bulk%d@d.test", i)
		if i == 7 {
			rcpt = "Old.Friend@d.test"
		}
		id := fmt.Sprintf("m%03d", i)
		recs = append(recs, record(logrec.Reception, id, rcpt, "", 250, "ok", old),
			record(logrec.TransientFailure, id, rcpt, "mx.d.test", 451, "try later", old.Add(time.Minute)),
			record(logrec.Delivery, id, rcpt, "mx.d.test", 250, "ok", old.Add(2*time.Minute)))
	}
	for i, r := range recs {
		r.UUID = fmt.Sprintf("u%04d", i)
	}
	dir := writeLog(t, recs)
	tc.Console.opts.LogDir = func() string { return dir }
	tc.api.answers["GET "+admin.PathQueue] = admin.QueueListV1{}
	tc.api.answers["GET "+admin.PathInspectMessage] = admin.ErrorResponse{Error: "no such message"} // no longer queued
	c := tc.client(true)

	body := c.do("GET", "/console/messages?recipient="+url.QueryEscape("friend"), nil).Body.String()
	mustContain(t, "search", body, `href="/console/message?id=m007"`, "Old.Friend@d.test", "Delivery", "and the log files")
	if strings.Contains(body, "m008") {
		t.Errorf("the search found another message:\n%s", body)
	}

	// The page: the three records from disk, and a newer one only the
	// recent records hold (not yet on disk), once each.
	late := record(logrec.OOB, "m007", "Old.Friend@d.test", "", 550, "gone since", tc.now)
	late.UUID = "u-late"
	tc.recent.Record(late)
	tc.recent.Record(recs[23]) // m007's Delivery, also on disk: not twice
	page := c.do("GET", "/console/message?id=m007", nil).Body.String()
	for typ, n := range map[string]int{"Reception": 1, "TransientFailure": 1, "Delivery": 1, "OOB": 1} {
		if got := strings.Count(page, `<td>`+typ+`</td>`); got != n {
			t.Errorf("%d %s rows on the message page, want %d", got, typ, n)
		}
	}
	if i, j := strings.Index(page, "<td>Reception</td>"), strings.Index(page, "<td>OOB</td>"); i < 0 || j < i {
		t.Errorf("records not oldest first:\n%s", page)
	}
}

// TestSearchLogStopsInTime: a search whose time has run out says so
// rather than reading on.
func TestSearchLogStopsInTime(t *testing.T) {
	now := time.Unix(1.8e9, 0)
	dir := writeLog(t, []*logrec.Record{record(logrec.Delivery, "m1", "a@d.test", "s", 250, "ok", now)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if recs, complete, err := searchLog(ctx, dir, Filter{Recipient: "a@"}, 10, nil); complete || len(recs) != 0 || err != nil {
		t.Errorf("cancelled search: %d records, complete %v, %v", len(recs), complete, err)
	}
	if recs, complete, err := searchLog(context.Background(), dir, Filter{Recipient: "A@D"}, 10, nil); !complete || len(recs) != 1 || err != nil {
		t.Errorf("search: %d records, complete %v, %v", len(recs), complete, err)
	}
	if recs, _, err := searchLog(context.Background(), dir, Filter{Recipient: "a@"}, 10, map[string]bool{"m1": true}); len(recs) != 0 || err != nil {
		t.Errorf("a message already found is not found again: %d, %v", len(recs), err)
	}
}
