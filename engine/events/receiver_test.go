package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
)

// hookReceiver is a webhook endpoint as a customer would write one: a
// real HTTP server on loopback that checks each request's signature by
// the scheme docs/contract.md gives (its own HMAC code, not the
// package's), and remembers which records came under which key.
type hookReceiver struct {
	t      testing.TB
	secret string
	srv    *http.Server
	url    string

	mu       sync.Mutex
	answer   func(recs []map[string]any) int // the status to answer; nil: 200
	byUUID   map[string]int                  // records taken (2xx), by uuid: how often
	keys     map[string][]string             // Idempotency-Key → the uuids of each request under it (first seen)
	badKey   []string                        // keys that came back with other records
	badSig   int                             // requests whose signature did not verify
	requests int
	failed   int               // requests answered other than 2xx
	order    []string          // uuids in the order first taken
	keyOf    map[string]string // uuid → the key it was first taken under
}

func startReceiver(t testing.TB, secret string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{t: t, secret: secret, byUUID: map[string]int{}, keys: map[string][]string{}, keyOf: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String() + "/hooks/gannet"
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// verify is the receiver's check, as documented: HMAC-SHA256 keyed with the
// secret over timestamp "." body, hex, after "v1=".
func verify(secret, timestamp, signature string, body []byte) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(signature))
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	ts := r.Header.Get("X-Gannet-Timestamp")
	okSig := verify(h.secret, ts, r.Header.Get("X-Gannet-Signature"), body)
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		okSig = false
	}
	var recs []map[string]any
	if len(body) > 0 && body[0] == '[' {
		err = json.Unmarshal(body, &recs)
	} else {
		var one map[string]any
		err = json.Unmarshal(body, &one)
		recs = []map[string]any{one}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if !okSig {
		h.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err != nil || r.Header.Get("Content-Type") != "application/json" {
		h.t.Errorf("request body does not decode (%v) or wrong content type %q: %.200s", err, r.Header.Get("Content-Type"), body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	uuids := make([]string, len(recs))
	for i, rec := range recs {
		uuids[i], _ = rec["uuid"].(string)
	}
	key := r.Header.Get("Idempotency-Key")
	if prev, seen := h.keys[key]; seen {
		if !slices.Equal(prev, uuids) {
			h.badKey = append(h.badKey, key)
		}
	} else {
		h.keys[key] = uuids
	}
	if len(uuids) == 1 && key != uuids[0] {
		h.badKey = append(h.badKey, key)
	}
	code := 200
	if h.answer != nil {
		code = h.answer(recs)
	}
	if code >= 300 {
		h.failed++
		w.WriteHeader(code)
		return
	}
	for _, u := range uuids {
		if h.byUUID[u] == 0 {
			h.order = append(h.order, u)
			h.keyOf[u] = key
		}
		h.byUUID[u]++
	}
	w.WriteHeader(code)
}

func (h *hookReceiver) setAnswer(f func(recs []map[string]any) int) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

// snapshot returns a copy of what the receiver counted.
func (h *hookReceiver) snapshot() (byUUID map[string]int, requests, failed, badSig int, badKey []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := make(map[string]int, len(h.byUUID))
	for k, v := range h.byUUID {
		m[k] = v
	}
	return m, h.requests, h.failed, h.badSig, slices.Clone(h.badKey)
}

// missing lists the uuids the receiver did not take.
func (h *hookReceiver) missing(uuids []string) []string {
	got, _, _, _, _ := h.snapshot()
	var out []string
	for _, u := range uuids {
		if got[u] == 0 {
			out = append(out, u)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing the test after limit (a
// bound on a broken run, not a measured time).
func waitFor(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %s", limit, what, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record makes the i-th test record.
func record(i int, typ logrec.Type, tenant string) *logrec.Record {
	return &logrec.Record{
		Type: typ, ID: fmt.Sprintf("msg%05d", i), Sender: "app@src.example",
		Recipient: fmt.Sprintf("user%d@dest.example", i), Queue: "campaign:" + tenant + "@dest.example",
		Site: "mx.dest.example", Size: 1200, NumAttempts: 1,
		Response: logrec.Response{Code: 250, EnhancedCode: "2.0.0", Content: "OK queued"},
		Tenant:   tenant, Campaign: "spring",
		PeerAddress: logrec.PeerAddress{Name: "mx.dest.example", Addr: "127.0.0.2"},
		Timestamp:   time.Now(), Created: time.Now(),
	}
}

// counter counts the results Options.Count reports.
type counter struct {
	mu sync.Mutex
	n  map[string]int // "sink/result"
}

func (c *counter) count(sink, result string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[sink+"/"+result] += n
}

func (c *counter) get(sink, result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[sink+"/"+result]
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for k, v := range c.n {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
