package logrec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sampleRecord() *Record {
	return &Record{
		Type:                 Delivery,
		ID:                   "0001abcdefghijklmnop",
		Sender:               "bounce@example.test",
		Recipient:            "user@example.test",
		Queue:                "spring:acme@example.test",
		Site:                 "mx1.example.test,mx2.example.test",
		Size:                 12345,
		NumAttempts:          2,
		Response:             Response{Code: 250, EnhancedCode: "2.0.0", Content: "OK queued as 12345"},
		BounceClassification: "",
		PeerAddress:          PeerAddress{Name: "mx1.example.test", Addr: "192.0.2.10"},
		TLSProtocolVersion:   "TLSv1.3",
		TLSCipher:            "TLS_AES_128_GCM_SHA256",
		Tenant:               "acme",
		Campaign:             "spring",
		Timestamp:            time.Unix(1700000100, 500),
		Created:              time.Unix(1700000000, 0),
		EgressSource:         "10.0.0.1",
		TLSPolicy:            "sts-enforce",
	}
}

func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if len(line) == 0 || line[len(line)-1] != '\n' {
		t.Fatalf("record does not end in a newline: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	return m
}

func TestAppendJSONFields(t *testing.T) {
	m := decode(t, sampleRecord().AppendJSON(nil))
	want := map[string]any{
		"type": "Delivery", "id": "0001abcdefghijklmnop", "sender": "bounce@example.test",
		"recipient": "user@example.test", "queue": "spring:acme@example.test",
		"site": "mx1.example.test,mx2.example.test", "size": 12345.0, "num_attempts": 2.0,
		"response": map[string]any{
			"code":          250.0,
			"enhanced_code": map[string]any{"class": 2.0, "subject": 0.0, "detail": 0.0},
			"content":       "OK queued as 12345",
		},
		"bounce_classification": "",
		"peer_address":          map[string]any{"name": "mx1.example.test", "addr": "192.0.2.10"},
		"tls_protocol_version":  "TLSv1.3", "tls_cipher": "TLS_AES_128_GCM_SHA256",
		"tenant": "acme", "campaign": "spring",
		"timestamp": 1700000100.0, "created": 1700000000.0,
		"egress_source": "10.0.0.1", "tls_policy": "sts-enforce",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %v\nwant %v", m, want)
	}
}

func TestAppendJSONEmptyAndOptional(t *testing.T) {
	r := &Record{Type: Reception, ID: "x", Listener: "relay-in", Response: Response{Code: 250, EnhancedCode: "bogus"}}
	m := decode(t, r.AppendJSON(nil))
	if m["peer_address"] != nil || m["response"].(map[string]any)["enhanced_code"] != nil {
		t.Errorf("empty peer/enhanced code not null: %v", m)
	}
	if _, ok := m["tls_policy"]; ok {
		t.Error("empty tls_policy written")
	}
	if _, ok := m["tls_result_type"]; ok {
		t.Error("empty tls_result_type written")
	}
	if _, ok := m["egress_source"]; ok {
		t.Error("empty egress_source written")
	}
	if m["listener"] != "relay-in" || m["timestamp"] != 0.0 {
		t.Errorf("listener/timestamp: %v", m)
	}
}

// TestAppendJSONTLSResultType: a failure a TLS policy decided carries
// tls_result_type after tls_policy, and it reads back.
func TestAppendJSONTLSResultType(t *testing.T) {
	r := sampleRecord()
	r.Type = TransientFailure
	r.Response = Response{Code: 451, EnhancedCode: "4.7.5", Content: "DANE: no TLSA record matches the certificate of mx1.example.test"}
	r.TLSProtocolVersion, r.TLSCipher = "", ""
	r.TLSPolicy, r.TLSResultType = "dane", "tlsa-invalid"
	line := r.AppendJSON(nil)
	m := decode(t, line)
	if m["tls_policy"] != "dane" || m["tls_result_type"] != "tlsa-invalid" {
		t.Errorf("tls_policy %v, tls_result_type %v", m["tls_policy"], m["tls_result_type"])
	}
	if want := `"tls_policy":"dane","tls_result_type":"tlsa-invalid"}`; !strings.HasSuffix(strings.TrimSpace(string(line)), want) {
		t.Errorf("record %s does not end with %s", line, want)
	}
	got, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.TLSResultType != "tlsa-invalid" || got.TLSPolicy != "dane" {
		t.Errorf("read back %+v", got)
	}
}

// TestAppendJSONBackoff: a BackoffStart record names the site and ends
// with its reason, and reads back.
func TestAppendJSONBackoff(t *testing.T) {
	r := Record{Type: BackoffStart, Site: "mx.slow.test", Reason: "deferral rate 0.42 over 5m (63/150)",
		Timestamp: time.Unix(1700000000, 0)}
	line := r.AppendJSON(nil)
	m := decode(t, line)
	if m["type"] != "BackoffStart" || m["site"] != "mx.slow.test" || m["peer_address"] != nil {
		t.Errorf("record %s", line)
	}
	if want := `"reason":"deferral rate 0.42 over 5m (63/150)"}`; !strings.HasSuffix(strings.TrimSpace(string(line)), want) {
		t.Errorf("record %s does not end with %s", line, want)
	}
	got, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != BackoffStart || got.Reason != r.Reason || got.Site != r.Site {
		t.Errorf("read back %+v", got)
	}
}

func TestEnhancedCode(t *testing.T) {
	for in, want := range map[string]string{
		"2.0.0":    `{"class":2,"subject":0,"detail":0}`,
		"5.1.10":   `{"class":5,"subject":1,"detail":10}`,
		"4.7.321":  `{"class":4,"subject":7,"detail":321}`,
		"":         `null`,
		"5.1":      `null`,
		"5.1.1.1":  `null`,
		"5..1":     `null`,
		"x.1.1":    `null`,
		"5.1.1000": `null`,
	} {
		if got := string(appendEnhanced(nil, in)); got != want {
			t.Errorf("appendEnhanced(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendStringEscapes(t *testing.T) {
	for _, s := range []string{"plain", `quote " and \ back`, "line\r\nbreak\ttab\x00nul\x1f", "ünïcødé ✓ 😀", "<html>&"} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("appendString(%q) = %s → %q, %v", s, b, got, err)
		}
	}
	b := appendString(nil, "bad \xff byte")
	var got string
	if err := json.Unmarshal(b, &got); err != nil || got != "bad \ufffd byte" {
		t.Errorf("invalid UTF-8: %s → %q, %v", b, got, err)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\x7f\xff", "😀\u2028", "\\u0000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := &Record{Type: Bounce, ID: s, Response: Response{Content: s, EnhancedCode: s}, PeerAddress: PeerAddress{Addr: s}}
		line := r.AppendJSON(nil)
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("invalid JSON for %q: %v\n%s", s, err, line)
		}
		if utf8.ValidString(s) && m["id"] != s {
			t.Fatalf("id %q came back as %q", s, m["id"])
		}
	})
}

func BenchmarkRecordEncode(b *testing.B) {
	r := sampleRecord()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkRecordEncodeStdlib is encoding/json on an equivalent struct, for
// comparison.
func BenchmarkRecordEncodeStdlib(b *testing.B) {
	type resp struct {
		Code         int            `json:"code"`
		EnhancedCode map[string]int `json:"enhanced_code"`
		Content      string         `json:"content"`
	}
	type rec struct {
		Type, ID, Sender, Recipient, Queue, Site string
		Size                                     int64
		NumAttempts                              int
		Response                                 resp
		BounceClassification                     string
		PeerAddress                              map[string]string
		TLSProtocolVersion, TLSCipher            string
		Tenant, Campaign                         string
		Timestamp, Created                       int64
	}
	s := sampleRecord()
	v := rec{string(s.Type), s.ID, s.Sender, s.Recipient, s.Queue, s.Site, s.Size, s.NumAttempts,
		resp{250, map[string]int{"class": 2, "subject": 0, "detail": 0}, s.Response.Content}, "",
		map[string]string{"name": s.PeerAddress.Name, "addr": s.PeerAddress.Addr}, s.TLSProtocolVersion, s.TLSCipher,
		s.Tenant, s.Campaign, s.Timestamp.Unix(), s.Created.Unix()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(&v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendJSONUUID: a record's uuid is written last, and reads back.
func TestAppendJSONUUID(t *testing.T) {
	r := sampleRecord()
	r.UUID = "5f0c7a52-3b1e-4c2d-9a8f-0e1d2c3b4a59"
	line := r.AppendJSON(nil)
	if want := `,"uuid":"5f0c7a52-3b1e-4c2d-9a8f-0e1d2c3b4a59"}`; !strings.HasSuffix(strings.TrimSpace(string(line)), want) {
		t.Errorf("record %s does not end with %s", line, want)
	}
	got, err := ParseRecord(line)
	if err != nil || got.UUID != r.UUID {
		t.Errorf("read back %q, %v", got.UUID, err)
	}
	r.UUID = ""
	if strings.Contains(string(r.AppendJSON(nil)), "uuid") {
		t.Error("a record without a uuid has a uuid field")
	}
}
