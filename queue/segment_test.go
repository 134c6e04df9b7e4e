package queue

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range []Compression{CompressZstd, CompressS2, CompressNone} {
		t.Run(c.String(), func(t *testing.T) {
			cs, err := newCodecs(c)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.close()
			for _, body := range [][]byte{nil, []byte("x"), testMail(1, 200), testMail(2, 60000)} {
				rec := cs.appendRecord([]byte("prefix"), c, "0abc", body)[len("prefix"):]
				v, n, err := decodeRecord(append(rec, "trailing"...))
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if n != len(rec) || string(v.ID) != "0abc" || v.Codec != c || v.RawLen != len(body) {
					t.Fatalf("decoded n=%d id=%q codec=%v raw=%d; want %d, 0abc, %v, %d", n, v.ID, v.Codec, v.RawLen, len(rec), c, len(body))
				}
				got, err := cs.decompress(v)
				if err != nil {
					t.Fatalf("decompress: %v", err)
				}
				if !bytes.Equal(got, body) {
					t.Fatalf("body differs after round trip")
				}
			}
		})
	}
}

// TestRawHeadIsTheRecordsStart: the head appendRawHead frames for a body
// stored as it is, followed by the body (which the writer puts right after
// it, appendReq.payload), is byte for byte the record appendRecord makes,
// so readers, the CRC check and crash recovery see no difference.
func TestRawHeadIsTheRecordsStart(t *testing.T) {
	cs, err := newCodecs(CompressNone)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.close()
	for _, body := range [][]byte{nil, testMail(1, 200), testAttachmentMail(2, 100<<10)} {
		whole := cs.appendRecord(nil, CompressNone, "0abc", body)
		head := appendRawHead([]byte("prefix"), "0abc", body)[len("prefix"):]
		if got := append(head, body...); !bytes.Equal(got, whole) {
			t.Fatalf("%d-byte body: head+body differs from the record", len(body))
		}
		v, n, err := decodeRecord(append(head[:len(head):len(head)], body...))
		if err != nil || n != len(whole) || !bytes.Equal(v.Payload, body) {
			t.Fatalf("%d-byte body: decode %v, n=%d of %d", len(body), err, n, len(whole))
		}
	}
}

// TestCodecFor: the configured codec stores mail below 16 KiB; above, s2
// stores none and zstd skips a body that does not compress.
func TestCodecFor(t *testing.T) {
	small, news := testMail(1, 8000), testMail(2, 100<<10)
	mid, att := testMail(3, 40<<10), testAttachmentMail(4, 100<<10)
	for _, tc := range []struct {
		use                   Compression
		small, mid, news, att Compression
	}{
		{CompressZstd, CompressZstd, CompressZstd, CompressZstd, CompressNone},
		{CompressS2, CompressS2, CompressNone, CompressNone, CompressNone},
		{CompressNone, CompressNone, CompressNone, CompressNone, CompressNone},
	} {
		cs, err := newCodecs(tc.use)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []struct {
			name string
			body []byte
			want Compression
		}{{"8 KB mail", small, tc.small}, {"40 KB mail", mid, tc.mid}, {"100 KB mail", news, tc.news}, {"100 KB attachment", att, tc.att}} {
			if got := cs.codecFor(b.body); got != b.want {
				t.Errorf("%v spool: %s stored with %v, want %v", tc.use, b.name, got, b.want)
			}
		}
		cs.close()
	}
}

func TestRecordDamageIsCorrupt(t *testing.T) {
	cs, err := newCodecs(CompressZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.close()
	rec := cs.appendRecord(nil, CompressZstd, "id1", testMail(3, 3000))
	// Every truncation is reported as a torn record.
	for i := 0; i < len(rec); i++ {
		_, _, err := decodeRecord(rec[:i])
		if !errors.Is(err, ErrCorrupt) || !errors.Is(err, errTorn) {
			t.Fatalf("truncated to %d: err = %v, want torn ErrCorrupt", i, err)
		}
	}
	// Every single bit flip is caught (by the checks or the CRC).
	for i := 0; i < len(rec); i++ {
		for bit := 0; bit < 8; bit += 3 {
			bad := bytes.Clone(rec)
			bad[i] ^= 1 << bit
			v, _, err := decodeRecord(bad)
			if err == nil {
				if _, err = cs.decompress(v); err == nil {
					t.Fatalf("flip of bit %d of byte %d not detected", bit, i)
				}
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip of byte %d: err = %v, want ErrCorrupt", i, err)
			}
		}
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{"": CompressZstd, "zstd": CompressZstd, "S2": CompressS2, "none": CompressNone} {
		got, err := ParseCompression(in)
		if err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseCompression("gzip"); err == nil {
		t.Error("ParseCompression(gzip) accepted")
	}
}

func TestSegmentName(t *testing.T) {
	name := segmentName(0x1f)
	if name != "000000000000001f.seg" {
		t.Fatalf("segmentName = %q", name)
	}
	if seq, ok := parseSegmentName(name); !ok || seq != 0x1f {
		t.Fatalf("parseSegmentName(%q) = %d, %v", name, seq, ok)
	}
	for _, bad := range []string{"1f.seg", "000000000000001f.tmp", "00000000000000zz.seg"} {
		if _, ok := parseSegmentName(bad); ok {
			t.Errorf("parseSegmentName(%q) accepted", bad)
		}
	}
}

// FuzzRecordDecode feeds arbitrary bytes to the record parser and the
// decompressors: they must never panic, and whatever decodes must decode
// the same way again.
func FuzzRecordDecode(f *testing.F) {
	cs, err := newCodecs(CompressZstd)
	if err != nil {
		f.Fatal(err)
	}
	defer cs.close()
	for i, c := range []Compression{CompressZstd, CompressS2, CompressNone} {
		f.Add(cs.appendRecord(nil, c, "0m3k2j1h00001abcdefg", testMail(uint64(i), 400)))
		f.Add(cs.appendRecord(nil, c, "x", nil))
	}
	f.Add([]byte(recordMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if n > len(b) || n < recordHeaderLen {
			t.Fatalf("n = %d of %d bytes", n, len(b))
		}
		if v.RawLen > 1<<20 {
			// A record claiming a huge body with a valid CRC decodes only
			// by allocating it; the parser above is what is under test.
			return
		}
		body, err := cs.decompress(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decompress error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(body) != v.RawLen {
			t.Fatalf("body %d bytes, record says %d", len(body), v.RawLen)
		}
	})
}
