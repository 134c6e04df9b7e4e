package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gannet/engine/admin"
)

// fakeAPI answers the admin paths with canned JSON and records requests.
// (The CLI against the real API is tested end to end in e2e/admin_test.go.)
type fakeAPI struct {
	mu   sync.Mutex
	reqs []string // "METHOD path?query body auth"
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI()+" "+string(body)+" "+r.Header.Get("Authorization"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	send := func(v any) { json.NewEncoder(w).Encode(v) }
	switch r.Method + " " + r.URL.Path {
	case "GET " + admin.PathQueueSummary:
		send(admin.QueueSummaryV1{
			Totals:     admin.Totals{Messages: 2, Counts: admin.Counts{Recipients: 3, Scheduled: 3}, Corrupt: 3},
			CorruptIDs: []string{"bad1", "bad2"},
			Queues: []admin.QueueRow{{Name: "spring:acme@x.test", Domain: "x.test", Tenant: "acme", Campaign: "spring",
				Messages: 2, Counts: admin.Counts{Recipients: 3, Scheduled: 3}, Suspended: true}},
			Domains: []admin.DomainRow{{Domain: "x.test", Messages: 2}},
			Tenants: []admin.GroupRow{{Name: "acme", EffectiveRate: 0.5}},
			Sites: []admin.SiteRow{{Site: "mx.x.test", Connections: 10, EffectiveRate: 100},
				{Site: "mx.slow.test", Connections: 2, EffectiveRate: 100.0 / 3600, Backoff: true}},
			Backoff: []admin.BackoffEntry{{Site: "mx.slow.test", Origin: "deferral-rate",
				Reason: "deferral rate 0.42 over 5m (63/150)", Since: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
				Rate: 100.0 / 3600, RetryAfter: "10m0s", ToNormalAfterDeliveries: 100, Delivered: 7}},
		})
	case "GET " + admin.PathInspectMessage:
		at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		switch r.URL.Query().Get("id") {
		case "bad1":
			send(admin.InspectMessageV1{ID: "bad1", State: admin.StateCorrupt, Corrupt: &admin.CorruptInfo{Kind: "index",
				Reason: "queue: corrupt spool record: metadata version 7", RawSize: 29, Quarantined: at}})
			return
		case "bad2":
			send(admin.InspectMessageV1{ID: "bad2", State: admin.StateCorrupt, Corrupt: &admin.CorruptInfo{Kind: "record",
				Reason: "checksum mismatch", RawSize: 812, Quarantined: at},
				Message: admin.MessageInformation{Sender: "s@src.test", Recipients: []admin.RecipientInfo{{Email: "b@y.test", State: "pending", Attempts: 1}}}})
			return
		}
		if r.URL.Query().Get("id") != "m1" {
			w.WriteHeader(http.StatusNotFound)
			send(admin.ErrorResponse{Error: `no queued message with id "` + r.URL.Query().Get("id") + `"`})
			return
		}
		data := "Subject: hi\r\n\r\nbody\r\n"
		send(admin.InspectMessageV1{ID: "m1", Message: admin.MessageInformation{Sender: "s@src.test",
			Recipients: []admin.RecipientInfo{{Email: "a@x.test", State: "pending", Attempts: 2, LastReply: "451 4.3.0 later", Held: true,
				Notify: "SUCCESS,DELAY", ORcpt: "rfc822;A@x.test"}},
			Data: &data, Ret: "HDRS", EnvID: "E1"}})
	case "GET " + admin.PathBackoff:
		send(admin.BackoffResponse{Sites: []admin.BackoffEntry{{Site: "mx.slow.test", Origin: "rule",
			Reason: "421 4.7.28 unusual rate", Since: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), RetryAfter: "0s"}}})
	case "DELETE " + admin.PathBackoff:
		if r.URL.Query().Get("site") != "mx.slow.test" {
			w.WriteHeader(http.StatusNotFound)
			send(admin.ErrorResponse{Error: `site "` + r.URL.Query().Get("site") + `" is not in backoff`})
			return
		}
		send(map[string]string{"ended": "mx.slow.test"})
	case "POST " + admin.PathBounce:
		send(admin.BounceV1Response{ID: "b-1", Bounced: map[string]int{"x.test": 4}, TotalBounced: 4})
	case "POST " + admin.PathSuspend:
		send(admin.SuspendV1Response{ID: "s-1"})
	case "GET " + admin.PathSuspend:
		exp := time.Now().Add(59 * time.Minute)
		send([]admin.RuleEntry{{ID: "s-1", Origin: "api", Domain: "x.test", Reason: "asked", Duration: "59m0s", Expires: &exp, Held: 3},
			{ID: "rule:mx.y.test", Origin: "rule", Site: "mx.y.test", Reason: "suspended by a shaping rule", Duration: "4m0s", Expires: &exp}})
	case "DELETE " + admin.PathSuspend:
		send(admin.ResumeV1Response{Resumed: []string{"s-1"}})
	case "POST " + admin.PathRetry:
		if strings.Contains(string(body), "nope") {
			w.WriteHeader(http.StatusNotFound)
			send(admin.ErrorResponse{Error: `no queued message with id "nope"`})
			return
		}
		send(admin.RetryV1Response{Retried: 2, Recipients: 3})
	case "GET " + admin.PathQueue, "GET " + admin.PathDeadLetters:
		if id := r.URL.Query().Get("id"); id != "" {
			data := "Subject: dead\r\n\r\nbody\r\n"
			died := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
			send(admin.ListedMessage{ID: id, Sender: "s@src.test", State: "dead", Died: &died, Data: &data,
				Recipients: []admin.ListedRecipient{{Email: "a@x.test", State: "expired", Attempts: 5, LastReply: "451 4.3.0 later"}}})
			return
		}
		if g := r.URL.Query().Get("group_by"); g != "" {
			send(admin.QueueListV1{GroupBy: g, Matched: 3, Groups: []admin.GroupCount{{Key: "x.test", Messages: 2, Recipients: 2}, {Key: "y.test", Messages: 1, Recipients: 1}}})
			return
		}
		send(admin.QueueListV1{Matched: 3, Next: "m1", Messages: []admin.ListedMessage{{ID: "m1", State: "scheduled", Sender: "s@src.test", Tenant: "acme",
			NumAttempts: 2, Recipients: []admin.ListedRecipient{{Email: "a@x.test", State: "pending", LastReply: "451 4.3.0 later"}}}}})
	case "POST " + admin.PathQueueBounce, "POST " + admin.PathQueueDelete:
		send(admin.QueueActionV1Response{Messages: 2, Recipients: 3})
	case "POST " + admin.PathDeadLetters, "DELETE " + admin.PathDeadLetters:
		send(admin.DeadLetterV1Response{Count: 1, IDs: []string{"d1"}})
	default:
		w.WriteHeader(http.StatusNotFound)
		send(admin.ErrorResponse{Error: "no such admin endpoint"})
	}
}

func runCLI(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := realMain(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestAdminCLI(t *testing.T) {
	f := &fakeAPI{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	api := "-api=" + srv.URL
	t.Setenv("GANNET_API_KEY", "")

	out, _, code := runCLI("queue", "summary", api)
	if code != 0 || !strings.Contains(out, "2 message(s), 3 recipient(s)") ||
		!regexpLine(out, `spring:acme@x.test\s+-\s+2\s+3\s+3\s+0\s+0\s+0\s+-\s+yes\s+-`) ||
		!regexpLine(out, `acme\s+0\s+0\s+0\s+0\s+0\s+30\.0/m\s+-`) || !regexpLine(out, `mx.x.test\s+-\s+10\s+0\s+0\s+100/s\s+-\s+-`) ||
		!regexpLine(out, `mx.slow.test\s+-\s+2\s+0\s+0\s+1.7/m\s+-\s+yes`) ||
		!regexpLine(out, `mx.slow.test\s+\S+\s+-\s+7/100\s+1.7/m\s+10m0s\s+deferral rate 0.42 over 5m \(63/150\)`) {
		t.Errorf("summary (%d):\n%s", code, out)
	}
	if !strings.Contains(out, "3 corrupt message(s) quarantined in the spool (gannet queue inspect ID): bad1 bad2 and 1 more\n") {
		t.Errorf("summary without the corrupt messages:\n%s", out)
	}
	out, _, code = runCLI("queue", "inspect", "bad1", api)
	if code != 0 || !regexpLine(out, `State\s+corrupt, quarantined \S+: not delivered, not bounced`) ||
		!regexpLine(out, `Corrupt\s+index \(its index entry does not decode\)`) || !regexpLine(out, `Raw size\s+29 bytes`) ||
		!regexpLine(out, `Reason\s+queue: corrupt spool record: metadata version 7`) || !strings.Contains(out, "The envelope is not known") {
		t.Errorf("inspect of a corrupt index entry (%d):\n%s", code, out)
	}
	out, _, code = runCLI("queue", "inspect", "bad2", api)
	if code != 0 || !regexpLine(out, `Corrupt\s+record \(its body record does not read back; the body is lost\)`) ||
		!regexpLine(out, `Raw size\s+812 bytes`) || !regexpLine(out, `b@y.test\s+pending\s+1\s+-\s+-\s+-`) || !regexpLine(out, `Sender\s+s@src.test`) {
		t.Errorf("inspect of a corrupt body record (%d):\n%s", code, out)
	}
	out, _, code = runCLI("queue", "inspect", "m1", api, "-body", "-key", "k1")
	if !regexpLine(out, `DSN\s+RET=HDRS ENVID=E1`) || !regexpLine(out, `a@x.test\s+SUCCESS,DELAY\s+rfc822;A@x.test\s+false`) {
		t.Errorf("inspect without the DSN parameters:\n%s", out)
	}
	if code != 0 || !regexpLine(out, `a@x.test\s+pending \(held\)\s+2\s+-\s+-\s+451 4.3.0 later`) || !strings.HasSuffix(out, "\nSubject: hi\r\n\r\nbody\r\n") {
		t.Errorf("inspect (%d):\n%s", code, out)
	}
	if last := f.reqs[len(f.reqs)-1]; !strings.Contains(last, "id=m1&want_body=true") || !strings.HasSuffix(last, "Bearer k1") {
		t.Errorf("inspect request %q", last)
	}
	_, errOut, code := runCLI("queue", "inspect", "nope", api)
	if code != 1 || !strings.Contains(errOut, `404 Not Found: no queued message with id "nope"`) {
		t.Errorf("inspect unknown (%d): %s", code, errOut)
	}
	out, _, code = runCLI("queue", "summary", "-json", api)
	var raw admin.QueueSummaryV1
	if code != 0 || json.Unmarshal([]byte(out), &raw) != nil || raw.Totals.Messages != 2 {
		t.Errorf("-json (%d): %s", code, out)
	}

	out, _, code = runCLI("bounce", "-domain", "x.test", "-reason", "bad list", "-duration", "0", api)
	if code != 0 || !strings.Contains(out, "bounce b-1: 4 recipient(s) bounced") {
		t.Errorf("bounce (%d): %s", code, out)
	}
	if last := f.reqs[len(f.reqs)-1]; !strings.Contains(last, `{"domain":"x.test","reason":"bad list","duration":"0"}`) {
		t.Errorf("bounce request %q", last)
	}
	if _, _, code = runCLI("bounce", api); code != 2 {
		t.Errorf("bounce without selector: %d, want 2", code)
	}
	out, _, code = runCLI("suspend", "-tenant", "acme", "-duration", "2h", api)
	if code != 0 || !strings.Contains(out, "suspension s-1 in force") {
		t.Errorf("suspend (%d): %s", code, out)
	}
	out, _, code = runCLI("suspend", "-list", api)
	if code != 0 || !regexpLine(out, `s-1\s+api\s+x.test\s+-\s+-\s+-\s+\d{4}-\d\d-\d\dT[0-9:]+Z\s+59m0s\s+3\s+asked`) ||
		!regexpLine(out, `rule:mx.y.test\s+rule\s+-\s+-\s+-\s+mx.y.test\s+\S+Z\s+4m0s\s+0\s+suspended by a shaping rule`) {
		t.Errorf("suspend -list (%d):\n%s", code, out)
	}
	out, _, code = runCLI("resume", "s-1", api)
	if code != 0 || out != "resumed s-1\n" || !strings.Contains(f.reqs[len(f.reqs)-1], `DELETE /api/admin/suspend/v1 {"id":"s-1"}`) {
		t.Errorf("resume (%d): %q", code, out)
	}
	if _, _, code = runCLI("resume", api); code != 2 {
		t.Errorf("resume without id or selector: %d, want 2", code)
	}
	if _, _, code = runCLI("resume", "s-1", "-domain", "x.test", api); code != 2 {
		t.Errorf("resume with id and selector: %d, want 2", code)
	}
}

func TestAdminCLIUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, errOut, code := runCLI("queue", "summary", "-api", "http://"+addr)
	if code != 1 || !strings.Contains(errOut, "cannot reach the admin API at http://"+addr) {
		t.Errorf("unreachable (%d): %s", code, errOut)
	}
	_, errOut, code = runCLI("queue", "summary", "-api", "ftp://x")
	if code != 1 || !strings.Contains(errOut, "bad -api URL") {
		t.Errorf("bad URL (%d): %s", code, errOut)
	}
	// A server that is not Gannet's API: a clear error, not a panic.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>proxy error</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, errOut, code = runCLI("queue", "summary", "-api", srv.URL)
	if code != 1 || !strings.Contains(errOut, "502 Bad Gateway: <html>proxy error</html>") {
		t.Errorf("non-JSON error (%d): %s", code, errOut)
	}
}

// regexpLine reports whether some line of out matches the pattern whole.
func regexpLine(out, pattern string) bool {
	re := regexp.MustCompile("^" + pattern + `\s*$`)
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// TestAdminCLIFindsAPI: without -api, the CLI takes the address from
// $GANNET_API, else from -config FILE's first [[http_listener]] serving
// admin (a wildcard address asked on loopback); -api wins over both.
func TestAdminCLIFindsAPI(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"totals":{}}`))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("GANNET_API_KEY", "")

	t.Setenv("GANNET_API", srv.URL)
	if _, errOut, code := runCLI("queue", "summary"); code != 0 || hits.Load() != 1 {
		t.Fatalf("$GANNET_API: exit %d, %d requests: %s", code, hits.Load(), errOut)
	}
	t.Setenv("GANNET_API", "")

	cfg := filepath.Join(t.TempDir(), "gannet.toml")
	toml := fmt.Sprintf("[[http_listener]]\nlisten = \"127.0.0.1:1\"\nservices = [\"metrics\"]\n\n[[http_listener]]\nlisten = \"0.0.0.0:%s\"\nservices = [\"admin\"]\n", port)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI("queue", "summary", "-config", cfg); code != 0 || hits.Load() != 2 {
		t.Fatalf("-config: exit %d, %d requests: %s", code, hits.Load(), errOut)
	}
	if _, errOut, code := runCLI("queue", "summary", "-config", cfg, "-api", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("-api over -config: exit %d: %s", code, errOut)
	}
	if err := os.WriteFile(cfg, []byte("[[http_listener]]\nlisten = \"127.0.0.1:9\"\nservices = [\"metrics\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI("queue", "summary", "-config", cfg); code != 1 || !strings.Contains(errOut, "no [[http_listener]] serves admin") {
		t.Errorf("config without admin: exit %d: %s", code, errOut)
	}
}

// TestQueueRetryCLI: "gannet queue retry" sends the selector or the ids to
// POST /api/admin/retry/v1 and prints how much is due now; a selector and
// ids together, or neither, are usage errors; a refusal is an error exit.
func TestQueueRetryCLI(t *testing.T) {
	f := &fakeAPI{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	api := "-api=" + srv.URL
	t.Setenv("GANNET_API_KEY", "")

	out, _, code := runCLI("queue", "retry", "-domain", "x.test", "-tenant", "acme", api)
	if code != 0 || out != "2 message(s), 3 recipient(s) due now\n" {
		t.Errorf("retry -domain (%d): %q", code, out)
	}
	if last := f.reqs[len(f.reqs)-1]; !strings.Contains(last, `POST /api/admin/retry/v1 {"domain":"x.test","tenant":"acme"}`) {
		t.Errorf("request %q", last)
	}
	out, _, code = runCLI("queue", "retry", "id1", "id2", api)
	if code != 0 || !strings.Contains(f.reqs[len(f.reqs)-1], `{"ids":["id1","id2"]}`) {
		t.Errorf("retry ids (%d): %q %q", code, out, f.reqs[len(f.reqs)-1])
	}
	n := len(f.reqs)
	for _, args := range [][]string{{"queue", "retry"}, {"queue", "retry", "id1", "-domain", "x.test"}, {"queue", "summary", "-domain", "x.test"}} {
		if _, _, code := runCLI(append(args, api)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if len(f.reqs) != n {
		t.Errorf("a usage error sent a request")
	}
	_, errOut, code := runCLI("queue", "retry", "nope", api)
	if code != 1 || !strings.Contains(errOut, `404`) || !strings.Contains(errOut, `no queued message with id "nope"`) {
		t.Errorf("retry of an unknown id (%d): %s", code, errOut)
	}
}

func TestQueueListAndDeadCLI(t *testing.T) {
	f := &fakeAPI{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	api := "-api=" + srv.URL
	t.Setenv("GANNET_API_KEY", "")
	last := func() string { return f.reqs[len(f.reqs)-1] }

	out, _, code := runCLI("queue", "list", "-domain", "x.test", "-min-attempts", "2", "-older", "1h", "-state", "scheduled", "-limit", "1", api)
	if code != 0 || !strings.Contains(out, "m1") || !strings.Contains(out, "next page: -after m1") {
		t.Errorf("queue list (%d): %q", code, out)
	}
	if !strings.Contains(last(), "GET /api/admin/queue/v1?domain=x.test&limit=1&min_attempts=2&older=1h&state=scheduled") {
		t.Errorf("request %q", last())
	}
	out, _, code = runCLI("queue", "list", "-group-by", "domain", api)
	if code != 0 || !regexp.MustCompile(`x\.test\s+2\s+2`).MatchString(out) {
		t.Errorf("group-by (%d): %q", code, out)
	}
	out, _, code = runCLI("queue", "bounce", "-domain", "x.test", "-reason", "gone", api)
	if code != 0 || out != "bounced 2 message(s), 3 recipient(s)\n" || !strings.Contains(last(), `{"domain":"x.test","reason":"gone"}`) {
		t.Errorf("queue bounce (%d): %q %q", code, out, last())
	}
	out, _, code = runCLI("queue", "delete", "-yes", "m1", "m2", api)
	if code != 0 || out != "deleted 2 message(s), 3 recipient(s)\n" || !strings.Contains(last(), `POST /api/admin/queue/v1/delete {"ids":["m1","m2"]}`) {
		t.Errorf("queue delete (%d): %q %q", code, out, last())
	}
	for _, args := range [][]string{{"queue", "bounce"}, {"queue", "delete", "m1", "-domain", "x.test"}, {"dead", "requeue"}, {"dead"}, {"queue", "list", "extra"}} {
		if _, _, code := runCLI(append(args, api)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	out, _, code = runCLI("dead", "list", "-domain", "x.test", "-since", "24h", api)
	if code != 0 || !strings.Contains(out, "m1") || !strings.Contains(last(), "GET /api/admin/dead-letters/v1?domain=x.test&since=24h") {
		t.Errorf("dead list (%d): %q %q", code, out, last())
	}
	out, _, code = runCLI("dead", "show", "d1", "-body", api)
	if code != 0 || !strings.Contains(out, "expired") || !strings.Contains(out, "Subject: dead") {
		t.Errorf("dead show (%d): %q", code, out)
	}
	out, _, code = runCLI("dead", "requeue", "-domain", "x.test", api)
	if code != 0 || out != "requeued 1 dead letter(s) d1\n" || !strings.Contains(last(), `POST /api/admin/dead-letters/v1 {"domain":"x.test"}`) {
		t.Errorf("dead requeue (%d): %q %q", code, out, last())
	}
	// Without -yes, delete and purge ask; anything but y/yes declines and
	// sends nothing.
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.WriteString("n\n")
	pw.Close()
	stdin := os.Stdin
	os.Stdin = r
	n := len(f.reqs)
	_, errOut, code := runCLI("queue", "delete", "m1", api)
	os.Stdin = stdin
	if code != 1 || !strings.Contains(errOut, "Delete 1 message(s) without a bounce? [y/N]") || !strings.Contains(errOut, "nothing deleted") || len(f.reqs) != n {
		t.Errorf("declined delete (%d): %q, %d requests", code, errOut, len(f.reqs)-n)
	}
	r, pw, _ = os.Pipe()
	pw.WriteString("yes\n")
	pw.Close()
	os.Stdin = r
	out, _, code = runCLI("queue", "delete", "-domain", "x.test", api)
	os.Stdin = stdin
	if code != 0 || !strings.Contains(out, "deleted 2 message(s)") || !strings.Contains(last(), `POST /api/admin/queue/v1/delete {"domain":"x.test"}`) {
		t.Errorf("confirmed delete by filter (%d): %q %q", code, out, last())
	}
	out, _, code = runCLI("dead", "purge", "d1", "-yes", api)
	if code != 0 || !strings.Contains(last(), `DELETE /api/admin/dead-letters/v1 {"ids":["d1"]}`) {
		t.Errorf("dead purge (%d): %q %q", code, out, last())
	}
}

// TestBackoffCLI: gannet backoff lists the sites in backoff with their
// reason; -end returns one to normal, and a site not in backoff fails.
func TestBackoffCLI(t *testing.T) {
	srv := httptest.NewServer(&fakeAPI{})
	defer srv.Close()
	api := "-api=" + srv.URL
	t.Setenv("GANNET_API_KEY", "")
	out, errOut, code := runCLI("backoff", api)
	if code != 0 || !regexpLine(out, `mx.slow.test\s+\S+\s+-\s+-\s+-\s+0s\s+421 4.7.28 unusual rate`) {
		t.Errorf("backoff (%d):\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCLI("backoff", "-end", "mx.slow.test", api); code != 0 || out != "mx.slow.test is back to normal\n" {
		t.Errorf("backoff -end (%d): %q %q", code, out, errOut)
	}
	if _, errOut, code = runCLI("backoff", "-end", "mx.other.test", api); code != 1 || !strings.Contains(errOut, "not in backoff") {
		t.Errorf("backoff -end of a site not in backoff (%d): %q", code, errOut)
	}
	if _, _, code = runCLI("backoff", "-end", "a", "-site", "b", api); code != 2 {
		t.Errorf("backoff -end with -site: exit %d, want 2", code)
	}
}
