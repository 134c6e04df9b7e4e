package admin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"gannet/engine/httpapi"
	"gannet/engine/suppress"
	"gannet/queue"
)

// suppressionAPI is the admin API over a real suppression list in a real
// spool, behind httpapi's gate: key-acme is tenant acme's, key-root an
// operator's.
func suppressionAPI(t *testing.T) (*world, *suppress.List) {
	t.Helper()
	w := newWorld(t)
	sp, err := queue.Open(queue.Options{Dir: t.TempDir(), Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	list := suppress.New(sp, nil)
	h := New(Options{Loop: w.loop, Suppression: list})
	w.api = httpapi.New(httpapi.Options{
		TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Services:     []string{httpapi.ServiceAdmin},
		APIKeys: func(b string) (string, bool) {
			switch b {
			case "key-acme":
				return "acme", true
			case "key-root":
				return "", true
			}
			return "", false
		},
		Admin: h,
	}).Handler()
	return w, list
}

// TestSuppressionEndpoints: add, list (paged), remove and import, with a
// tenant's key held to its own list, and refusals as JSON errors.
func TestSuppressionEndpoints(t *testing.T) {
	w, list := suppressionAPI(t)
	const far = "192.0.2.7:5000" // not trusted: a key is needed
	for i := range 3 {
		if st := w.call(t, "POST", PathSuppression, fmt.Sprintf(`{"tenant":"acme","address":"u%d@x.test","reason":"r"}`, i), "key-root", far, nil); st != 200 {
			t.Fatalf("add: %d", st)
		}
	}
	var added SuppressionAddResponse
	if st := w.call(t, "POST", PathSuppression, `{"address":"G@X.test"}`, "", "", &added); st != 200 || added.Entry.Address != "g@x.test" || added.Entry.Tenant != "" || added.Entry.Source != "admin" {
		t.Errorf("global add: %d %+v", st, added)
	}
	// A tenant's key: its own list, whatever it asks.
	if st := w.call(t, "POST", PathSuppression, `{"address":"own@x.test"}`, "key-acme", far, &added); st != 200 || added.Entry.Tenant != "acme" {
		t.Errorf("acme's add: %d %+v", st, added)
	}
	for _, c := range []struct{ method, target, body string }{
		{"POST", PathSuppression, `{"tenant":"other","address":"a@x.test"}`},
		{"DELETE", PathSuppression, `{"tenant":"other","address":"a@x.test"}`},
		{"GET", PathSuppression + "?tenant=other", ""},
		{"GET", PathSuppression + "?global=true", ""},
		{"GET", PathSuppressionExport + "?global=true", ""},
		{"POST", PathSuppressionImport + "?tenant=other", "a@x.test\n"},
		{"POST", PathErase, `{"address":"a@x.test"}`},
	} {
		if st := w.call(t, c.method, c.target, c.body, "key-acme", far, nil); st != http.StatusForbidden {
			t.Errorf("acme's key: %s %s: %d, want 403", c.method, c.target, st)
		}
	}
	var page SuppressionListResponse
	if st := w.call(t, "GET", PathSuppression+"?limit=2", "", "key-acme", far, &page); st != 200 || len(page.Entries) != 2 || page.Next == "" {
		t.Fatalf("acme's first page: %d %+v", st, page)
	}
	var rest SuppressionListResponse
	w.call(t, "GET", PathSuppression+"?limit=2&after="+page.Next, "", "key-acme", far, &rest)
	if len(rest.Entries) != 2 || rest.Next != "" || rest.Entries[1].Address != "u2@x.test" {
		t.Errorf("acme's second page: %+v", rest)
	}
	var all SuppressionListResponse
	w.call(t, "GET", PathSuppression, "", "", "", &all)
	if len(all.Entries) != 5 || all.Entries[0].Tenant != "" {
		t.Errorf("every list: %+v", all)
	}
	for _, c := range []struct {
		method, target, body string
		status               int
	}{
		{"POST", PathSuppression, `{"address":"nope"}`, 422},
		{"POST", PathSuppression, `{"address":""}`, 422},
		{"POST", PathSuppression, `{"address":"a@x.test","extra":1}`, 400},
		{"GET", PathSuppression + "?limit=0", "", 422},
		{"GET", PathSuppression + "?color=red", "", 422},
		{"GET", PathSuppression + "?after=!!", "", 422},
		{"GET", PathSuppression + "?tenant=a&global=true", "", 422},
		{"POST", PathSuppressionImport + "?x=1", "", 422},
		{"POST", PathErase, `{}`, 404}, // no Erase in these Options
	} {
		if st := w.call(t, c.method, c.target, c.body, "", "", nil); st != c.status {
			t.Errorf("%s %s %s: %d, want %d", c.method, c.target, c.body, st, c.status)
		}
	}
	var removed SuppressionRemoveResponse
	if w.call(t, "DELETE", PathSuppression, `{"address":"own@x.test"}`, "key-acme", far, &removed); !removed.Removed || list.Suppressed("acme", "own@x.test") {
		t.Errorf("acme's remove: %+v", removed)
	}
	var imp suppress.ImportResult
	if st := w.call(t, "POST", PathSuppressionImport, "a@x.test\nb@x.test,acme\nc@x.test,other\n", "key-acme", far, &imp); st != 200 || imp.Added != 2 || imp.Failed != 1 {
		t.Errorf("acme's import: %d %+v", st, imp)
	}
	if !list.Suppressed("acme", "a@x.test") || list.Suppressed("other", "c@x.test") {
		t.Error("the import left acme's list")
	}
}

// TestSuppressionExport: the export is CSV with a header, the chosen list
// only.
func TestSuppressionExport(t *testing.T) {
	w, list := suppressionAPI(t)
	list.Add("acme", "a@x.test", "why, with a comma", suppress.SourceAdmin)
	list.Add("", "g@x.test", "", suppress.SourceAdmin)
	req := httptest.NewRequest("GET", PathSuppressionExport+"?tenant=acme", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	rr := httptest.NewRecorder()
	w.api.ServeHTTP(rr, req)
	lines := strings.Split(strings.TrimSpace(rr.Body.String()), "\n")
	if rr.Code != 200 || !strings.HasPrefix(rr.Header().Get("Content-Type"), "text/csv") || len(lines) != 2 ||
		lines[0] != "address,tenant,reason,source,created,expires" || !strings.HasPrefix(lines[1], `a@x.test,acme,"why, with a comma",admin,`) {
		t.Errorf("export %d %q:\n%s", rr.Code, rr.Header().Get("Content-Type"), rr.Body.String())
	}
}
