package queue

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// corruptions collects what a spool reports to Options.OnCorrupt.
type corruptions struct {
	mu   sync.Mutex
	list []Corruption
}

func (c *corruptions) add(x Corruption) {
	c.mu.Lock()
	c.list = append(c.list, x)
	c.mu.Unlock()
}

func (c *corruptions) get() []Corruption {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.list)
}

// setIndexValues overwrites m/<id> values of a closed spool in dir, as a
// damaged or foreign index would hold them.
func setIndexValues(t *testing.T, dir string, values map[string][]byte) {
	t.Helper()
	db, err := openIndex(filepath.Join(dir, "index"), 1<<20, 1<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range values {
		if err := db.Set(metaKey(id), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// flipRecordByte damages the body record of m in its segment file.
func flipRecordByte(t *testing.T, dir string, m *Message) {
	t.Helper()
	seg := filepath.Join(dir, "segments", segmentName(m.Segment))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[m.Offset+m.Length/2] ^= 0x40
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptIndexEntryIsQuarantined: an undecodable m/<id> value (garbage,
// or a value cut after its location) no longer fails Scan: the other
// messages are scanned, the bad ones are reported once, kept in the
// quarantine with the reason and the bytes, stop pinning their segment,
// and never come back (not after Update, not after a restart).
func TestCorruptIndexEntryIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	var msgs []*Message
	for i := range 4 {
		m := testMessage(fmt.Sprintf("m%d", i), 2)
		if err := s.Append(m, testMail(uint64(i), 3000)); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	s.Close()
	garbage := []byte("\xde\xad\xbe\xef not an index value")
	cut := encodeMeta(nil, msgs[2])[:metaFixedLen+3] // the location decodes, the rest does not
	setIndexValues(t, dir, map[string][]byte{"m1": garbage, "m2": cut})

	var got corruptions
	s = openTest(t, Options{Dir: dir, OnCorrupt: got.add})
	all := scanAll(t, s) // fails the test if Scan returns an error
	if len(all) != 2 || all["m0"] == nil || all["m3"] == nil {
		t.Fatalf("Scan passed %v, want m0 and m3", slices.Sorted(maps.Keys(all)))
	}
	for _, id := range []string{"m0", "m3"} {
		if body, err := s.Body(all[id]); err != nil || len(body) == 0 {
			t.Errorf("Body(%s) beside corrupt entries: %v", id, err)
		}
	}
	rep := got.get()
	if len(rep) != 2 || rep[0].ID != "m1" || rep[1].ID != "m2" {
		t.Fatalf("OnCorrupt got %+v, want m1 and m2", rep)
	}
	for i, want := range [][]byte{garbage, cut} {
		c := rep[i]
		if c.Kind != CorruptIndex || c.Err != nil || c.Size != int64(len(want)) || !bytes.Equal(c.Value, want) ||
			!strings.Contains(c.Reason, "corrupt") || c.At.IsZero() {
			t.Errorf("report %d: %+v", i, c)
		}
	}
	if st := s.Stats(); st.Live != 2 || st.Quarantined != 2 {
		t.Errorf("Stats: live %d, quarantined %d; want 2 and 2", st.Live, st.Quarantined)
	}
	c, ok, err := s.Quarantined("m1")
	if err != nil || !ok || c.Kind != CorruptIndex || c.Reason != rep[0].Reason || c.Size != int64(len(garbage)) ||
		!bytes.Equal(c.Value, garbage) || c.Message != nil || !c.At.Equal(rep[0].At) {
		t.Errorf("Quarantined(m1) = %+v, %v, %v", c, ok, err)
	}
	if _, ok, _ := s.Quarantined("m0"); ok {
		t.Error("Quarantined(m0) found a healthy message")
	}
	ids, total, err := s.QuarantinedIDs(10)
	if err != nil || total != 2 || !reflect.DeepEqual(ids, []string{"m1", "m2"}) {
		t.Errorf("QuarantinedIDs = %v, %d, %v", ids, total, err)
	}

	// No resurrection: Update and Remove of a quarantined id do nothing.
	if err := s.Update(msgs[1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of a quarantined message: %v, want ErrNotFound", err)
	}
	if err := s.Remove("m2"); err != nil {
		t.Errorf("Remove of a quarantined message: %v", err)
	}
	// m2's location counted it in the segment; it no longer pins it.
	for _, id := range []string{"m0", "m3"} {
		if err := s.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	if segs := segmentFiles(t, dir); len(segs) != 0 {
		t.Errorf("segments %v left after every healthy message was removed", segs)
	}
	s.Close()

	// A restart finds nothing new to report, and the quarantine is kept.
	var again corruptions
	s = openTest(t, Options{Dir: dir, OnCorrupt: again.add})
	if all := scanAll(t, s); len(all) != 0 {
		t.Errorf("after restart Scan passed %d messages, want none", len(all))
	}
	if r := again.get(); len(r) != 0 {
		t.Errorf("after restart OnCorrupt got %+v", r)
	}
	if st := s.Stats(); st.Quarantined != 2 || st.Live != 0 {
		t.Errorf("after restart Stats %+v", st)
	}
	if c, ok, _ := s.Quarantined("m2"); !ok || !bytes.Equal(c.Value, cut) {
		t.Errorf("after restart Quarantined(m2) = %+v, %v", c, ok)
	}
}

// TestCorruptIDIsQuarantined: an m/ key whose id Append would never take
// (empty, or longer than MaxIDLen) is quarantined like an undecodable value.
func TestCorruptIDIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	m := testMessage("ok", 1)
	if err := s.Append(m, []byte("hello\r\n")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	long := strings.Repeat("x", MaxIDLen+1)
	v := encodeMeta(nil, m)
	setIndexValues(t, dir, map[string][]byte{"": v, long: v})
	var got corruptions
	s = openTest(t, Options{Dir: dir, OnCorrupt: got.add})
	if all := scanAll(t, s); len(all) != 1 || all["ok"] == nil {
		t.Fatalf("Scan passed %d messages, want only ok", len(all))
	}
	if r := got.get(); len(r) != 2 || r[0].ID != "" || r[1].ID != long || r[0].Kind != CorruptIndex {
		t.Fatalf("OnCorrupt got %+v", r)
	}
}

// TestQuarantineCorruptRecord: a message whose body record was damaged
// (Body reports ErrCorrupt) is taken out with Quarantine: its envelope is
// kept, its segment is freed once its neighbours go, a healthy message is
// refused with ErrNotCorrupt, and nothing brings it back.
func TestQuarantineCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	a, b := testMessage("a", 2), testMessage("b", 1)
	a.Recipients[1].State, a.Recipients[1].LastReply = Delivered, "250 2.0.0 ok"
	for i, m := range []*Message{a, b} {
		if err := s.Append(m, testMail(uint64(i), 3000)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	flipRecordByte(t, dir, a)

	var got corruptions
	s = openTest(t, Options{Dir: dir, OnCorrupt: got.add})
	all := scanAll(t, s)
	if len(all) != 2 || len(got.get()) != 0 {
		t.Fatalf("Scan: %d messages, %d corrupt; the index is intact", len(all), len(got.get()))
	}
	_, berr := s.Body(all["a"])
	if !errors.Is(berr, ErrCorrupt) {
		t.Fatalf("Body of the damaged record: %v", berr)
	}
	if err := s.Quarantine("b"); !errors.Is(err, ErrNotCorrupt) {
		t.Errorf("Quarantine of a healthy message: %v, want ErrNotCorrupt", err)
	}
	if err := s.Quarantine("a"); err != nil {
		t.Fatalf("Quarantine(a): %v", err)
	}
	rep := got.get()
	if len(rep) != 1 || rep[0].ID != "a" || rep[0].Kind != CorruptRecord || rep[0].Size != a.Length ||
		!strings.Contains(rep[0].Reason, "checksum") || rep[0].Message == nil {
		t.Fatalf("OnCorrupt got %+v", rep)
	}
	c, ok, err := s.Quarantined("a")
	if err != nil || !ok || c.Kind != CorruptRecord || c.Message == nil {
		t.Fatalf("Quarantined(a) = %+v, %v, %v", c, ok, err)
	}
	if m := c.Message; m.ID != "a" || m.From != a.From || m.Tenant != "acme" || len(m.Recipients) != 2 ||
		m.Recipients[0].Addr != a.Recipients[0].Addr || m.Recipients[1].State != Delivered {
		t.Errorf("quarantined envelope %+v, want that of a", m)
	}
	if err := s.Quarantine("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Quarantine(a): %v, want ErrNotFound", err)
	}
	if err := s.Update(all["a"]); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of a quarantined message: %v, want ErrNotFound", err)
	}
	if _, err := s.Body(&Message{ID: "a"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Body by id of a quarantined message: %v, want ErrNotFound", err)
	}
	if st := s.Stats(); st.Live != 1 || st.Quarantined != 1 {
		t.Errorf("Stats %+v", st)
	}
	// Nothing compaction does trips over it, and b keeps its body.
	if _, err := s.Compact(0.99); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if body, err := s.Body(all["b"]); err != nil || !bytes.Equal(body, testMail(1, 3000)) {
		t.Fatalf("Body(b) after compaction: %v", err)
	}
	if err := s.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(segmentFiles(t, dir), segmentName(a.Segment)) {
		t.Errorf("segment %s kept by the quarantined message", segmentName(a.Segment))
	}
	s.Close()
	s = openTest(t, Options{Dir: dir})
	if segs := segmentFiles(t, dir); len(segs) != 0 {
		t.Errorf("segments %v kept by a quarantined message", segs)
	}
	if all := scanAll(t, s); len(all) != 0 {
		t.Errorf("a quarantined message came back: %v", all)
	}
}

// TestQuarantineIsBounded: past Options.MaxQuarantined the records of the
// lowest ids go, at once and at Open; each keeps at most
// maxQuarantineValue bytes of the value but the whole size.
func TestQuarantineIsBounded(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	for i := range 6 {
		if err := s.Append(testMessage(fmt.Sprintf("b%d", i), 1), []byte("x\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	big := bytes.Repeat([]byte{0xff}, maxQuarantineValue+100)
	bad := map[string][]byte{}
	for i := range 5 {
		bad[fmt.Sprintf("b%d", i)] = []byte{9, 9, 9}
	}
	bad["b4"] = big
	setIndexValues(t, dir, bad)

	s = openTest(t, Options{Dir: dir, MaxQuarantined: 3})
	if all := scanAll(t, s); len(all) != 1 || all["b5"] == nil {
		t.Fatalf("Scan passed %d messages, want b5", len(all))
	}
	ids, total, err := s.QuarantinedIDs(100)
	if err != nil || total != 3 || !reflect.DeepEqual(ids, []string{"b2", "b3", "b4"}) {
		t.Fatalf("QuarantinedIDs = %v, %d, %v; want the 3 highest", ids, total, err)
	}
	c, ok, _ := s.Quarantined("b4")
	if !ok || len(c.Value) != maxQuarantineValue || c.Size != int64(len(big)) {
		t.Errorf("Quarantined(b4): kept %d of %d bytes (ok %v)", len(c.Value), c.Size, ok)
	}
	s.Close()
	s = openTest(t, Options{Dir: dir, MaxQuarantined: 1})
	if ids, total, _ := s.QuarantinedIDs(100); total != 1 || !reflect.DeepEqual(ids, []string{"b4"}) {
		t.Errorf("after Open with MaxQuarantined 1: %v, %d", ids, total)
	}
}

// TestQuarantineRecordRoundTrip: the quarantine record keeps every field,
// and a damaged one is reported, not fatal.
func TestQuarantineRecordRoundTrip(t *testing.T) {
	m := testMessage("r", 1)
	m.Segment, m.Length = 3, 99
	c := Corruption{ID: "r", Kind: CorruptRecord, Reason: "checksum mismatch", Size: 99,
		At: time.Unix(1772445600, 5), Value: encodeMeta(nil, m)}
	b := encodeQuarantine(nil, &c)
	got, err := decodeQuarantine("r", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Message == nil || got.Message.From != m.From || got.Message.Recipients[0].Addr != m.Recipients[0].Addr {
		t.Errorf("Message %+v", got.Message)
	}
	got.Message = nil
	if !got.At.Equal(c.At) {
		t.Errorf("At %v, want %v", got.At, c.At)
	}
	got.At = c.At
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
	for i := range b {
		if _, err := decodeQuarantine("r", b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: %v", i, err)
		}
	}
	if _, err := decodeQuarantine("r", append(b, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// FuzzQuarantineDecode feeds arbitrary bytes to the quarantine record
// decoder: it must never panic, and whatever it accepts must survive
// encoding and decoding again unchanged. Seeds beyond these: testdata/fuzz.
func FuzzQuarantineDecode(f *testing.F) {
	m := testMessage("f", 2)
	m.Segment, m.Length = 1, 40
	f.Add(encodeQuarantine(nil, &Corruption{Kind: CorruptIndex, Reason: "metadata: bad from", Size: 3, At: time.Unix(1, 0), Value: []byte{1, 2, 3}}))
	f.Add(encodeQuarantine(nil, &Corruption{Kind: CorruptRecord, Reason: "checksum mismatch", Size: 40, Value: encodeMeta(nil, m)}))
	f.Add([]byte{quarantineVersion, byte(CorruptIndex)})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeQuarantine("f", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeQuarantine("f", encodeQuarantine(nil, &c))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("re-decoding differs:\n first  %+v\n second %+v", c, again)
		}
	})
}
