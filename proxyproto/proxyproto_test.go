package proxyproto

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParseV1(t *testing.T) {
	tests := []struct {
		in      string
		want    Header
		wantErr error
	}{
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO", Header{Version: 1, Source: ap("192.0.2.7:56324"), Dest: ap("198.51.100.1:25"), Len: 44}, nil},
		{"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", Header{Version: 1, Source: ap("[2001:db8::1]:1"), Dest: ap("[2001:db8::2]:65535"), Len: 44}, nil},
		{"PROXY UNKNOWN\r\n", Header{Version: 1, Local: true, Len: 15}, nil},
		{"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n", Header{Version: 1, Local: true, Len: 43}, nil},
		// The worst case of §2.1, 107 bytes with CRLF.
		{"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", Header{Version: 1, Local: true, Len: 107}, nil},
		{"", Header{}, ErrIncomplete},
		{"PRO", Header{}, ErrIncomplete},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r", Header{}, ErrIncomplete},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25", Header{}, ErrIncomplete},
		{"EHLO client.example\r\n", Header{}, ErrNoHeader},
		{"PROXX TCP4", Header{}, ErrNoHeader},
		{"\x16\x03\x01\x02\x00", Header{}, ErrNoHeader},                               // a TLS ClientHello
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n", Header{}, ErrMalformed},      // LF alone
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\rX\r\n", Header{}, ErrMalformed}, // CR alone
		{"PROXY TCP4 192.0.2.07 198.51.100.1 56324 25\r\n", Header{}, ErrMalformed},   // leading zero
		{"PROXY TCP4 192.0.2.7 198.51.100.1 056324 25\r\n", Header{}, ErrMalformed},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n", Header{}, ErrMalformed},
		{"PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n", Header{}, ErrMalformed}, // family mismatch
		{"PROXY TCP6 192.0.2.7 2001:db8::2 1 25\r\n", Header{}, ErrMalformed},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 1 25 9\r\n", Header{}, ErrMalformed}, // extra field
		{"PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n", Header{}, ErrMalformed},
		{"PROXY TCP4  192.0.2.7 198.51.100.1 1 25\r\n", Header{}, ErrMalformed},
		{"PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n", Header{}, ErrMalformed},
		{"PROXY TCP6 fe80::1%eth0 fe80::2 1 25\r\n", Header{}, ErrMalformed},
		{"PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n", Header{}, ErrMalformed}, // no CRLF in 107
		{"PROXY TCP4 " + strings.Repeat("1", 96), Header{}, ErrMalformed},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// v2 builds a binary header by hand, as the spec draws it.
func v2(verCmd, famProto byte, body ...byte) []byte {
	b := append([]byte(nil), v2Sig[:]...)
	b = append(b, verCmd, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func TestParseV2(t *testing.T) {
	inet := []byte{192, 0, 2, 7, 198, 51, 100, 1, 0xDC, 0x04, 0, 25}
	inet6 := make([]byte, 36)
	inet6[15], inet6[31], inet6[33], inet6[35] = 1, 2, 9, 25
	copy(inet6[0:], []byte{0x20, 0x01, 0x0d, 0xb8})
	copy(inet6[16:], []byte{0x20, 0x01, 0x0d, 0xb8})
	mapped := make([]byte, 36)
	copy(mapped[10:], []byte{0xff, 0xff, 192, 0, 2, 9})
	copy(mapped[26:], []byte{0xff, 0xff, 198, 51, 100, 1})
	tests := []struct {
		name    string
		in      []byte
		want    Header
		wantErr error
	}{
		{"tcp4", v2(0x21, 0x11, inet...), Header{Version: 2, Source: ap("192.0.2.7:56324"), Dest: ap("198.51.100.1:25"), Len: 28}, nil},
		{"tcp4 and data behind", append(v2(0x21, 0x11, inet...), "EHLO x\r\n"...), Header{Version: 2, Source: ap("192.0.2.7:56324"), Dest: ap("198.51.100.1:25"), Len: 28}, nil},
		{"tcp6", v2(0x21, 0x21, inet6...), Header{Version: 2, Source: ap("[2001:db8::1]:9"), Dest: ap("[2001:db8::2]:25"), Len: 52}, nil},
		{"v4-mapped v6 unmapped", v2(0x21, 0x21, mapped...), Header{Version: 2, Source: ap("192.0.2.9:0"), Dest: ap("198.51.100.1:0"), Len: 52}, nil},
		{"udp4 counts as an address", v2(0x21, 0x12, inet...), Header{Version: 2, Source: ap("192.0.2.7:56324"), Dest: ap("198.51.100.1:25"), Len: 28}, nil},
		{"local", v2(0x20, 0x00), Header{Version: 2, Local: true, Len: 16}, nil},
		// "must not assume zero is presented for LOCAL connections"
		{"local with addresses", v2(0x20, 0x11, inet...), Header{Version: 2, Local: true, Len: 28}, nil},
		{"proxy unspec", v2(0x21, 0x00, 1, 2, 3), Header{Version: 2, Local: true, Len: 19}, nil},
		{"unix", v2(0x21, 0x31, make([]byte, 216)...), Header{Version: 2, Local: true, Len: 232}, nil},
		{"tlv noop", v2(0x21, 0x11, append(inet, 0x04, 0, 2, 'a', 'b')...), Header{Version: 2, Source: ap("192.0.2.7:56324"), Dest: ap("198.51.100.1:25"), Len: 33}, nil},
		{"signature prefix", v2Sig[:5], Header{}, ErrIncomplete},
		{"fixed part short", v2(0x21, 0x11, inet...)[:15], Header{}, ErrIncomplete},
		{"addresses short", v2(0x21, 0x11, inet...)[:27], Header{}, ErrIncomplete},
		{"bad signature", append(append([]byte(nil), v2Sig[:11]...), 0x0B, 0x21, 0x11, 0, 0), Header{}, ErrNoHeader},
		{"version 1 in binary", v2(0x11, 0x11, inet...), Header{}, ErrMalformed},
		{"version 3", v2(0x31, 0x11, inet...)[:13], Header{}, ErrMalformed},
		{"command 2", v2(0x22, 0x11, inet...), Header{}, ErrMalformed},
		{"family 4", v2(0x21, 0x41, inet...), Header{}, ErrMalformed},
		{"protocol 3", v2(0x21, 0x13, inet...), Header{}, ErrMalformed},
		{"tcp4 length short", v2(0x21, 0x11, inet[:11]...), Header{}, ErrMalformed},
		{"tcp6 length short", v2(0x21, 0x21, inet6[:35]...), Header{}, ErrMalformed},
		{"unix length short", v2(0x21, 0x31, make([]byte, 215)...), Header{}, ErrMalformed},
		{"tlv past the end", v2(0x21, 0x11, append(inet, 0x04, 0, 3, 'a', 'b')...), Header{}, ErrMalformed},
		{"tlv header cut", v2(0x21, 0x11, append(inet, 0x04, 0)...), Header{}, ErrMalformed},
		{"too long", append(append([]byte(nil), v2Sig[:]...), 0x21, 0x11, 0x04, 0x01), Header{}, ErrTooLong},
		{"longest", v2(0x21, 0x11, append(inet, append([]byte{0x04, 0x03, 0xF1}, make([]byte, MaxV2Len-15)...)...)...), Header{Version: 2, Source: ap("192.0.2.7:56324"), Dest: ap("198.51.100.1:25"), Len: MaxLength}, nil},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("%s: Parse(% x) = %+v, %v; want %+v, %v", tt.name, tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestParseV2Checksum: a PP2_TYPE_CRC32C TLV (§2.2.3) is checked.
func TestParseV2Checksum(t *testing.T) {
	tlv := []byte{tlvCRC32C, 0, 4, 0, 0, 0, 0}
	b := AppendV2(nil, ap("192.0.2.7:1000"), ap("198.51.100.1:25"), tlv)
	sum := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(b[len(b)-4:], sum)
	if h, err := Parse(b); err != nil || h.Source != ap("192.0.2.7:1000") {
		t.Fatalf("good checksum: %+v, %v", h, err)
	}
	b[len(b)-1]++
	if _, err := Parse(b); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad checksum: %v, want ErrChecksum", err)
	}
}

func TestAppendRoundTrip(t *testing.T) {
	for _, c := range [][2]string{
		{"192.0.2.7:56324", "198.51.100.1:25"},
		{"[2001:db8::1]:1", "[2001:db8::2]:65535"},
		{"127.0.0.9:0", "127.0.0.1:2525"},
	} {
		src, dst := ap(c[0]), ap(c[1])
		for v, b := range map[int][]byte{1: AppendV1(nil, src, dst), 2: AppendV2(nil, src, dst, nil)} {
			h, err := Parse(b)
			if err != nil || h.Version != v || h.Source != src || h.Dest != dst || h.Len != len(b) || h.Local {
				t.Errorf("v%d %v → %v: %+v, %v", v, src, dst, h, err)
			}
		}
	}
	for v, b := range map[int][]byte{1: AppendV1(nil, netip.AddrPort{}, netip.AddrPort{}), 2: AppendV2(nil, netip.AddrPort{}, netip.AddrPort{}, nil)} {
		if h, err := Parse(b); err != nil || !h.Local || h.Len != len(b) {
			t.Errorf("v%d local: %+v, %v", v, h, err)
		}
	}
}

// FuzzParse: any input either parses to a header within the limits, whose
// every proper prefix is incomplete and which parses the same alone, or is
// refused; incomplete input is never longer than a header may be.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(AppendV2(nil, ap("192.0.2.7:1"), ap("198.51.100.1:25"), []byte{0x04, 0, 1, 'x'}))
	f.Add(AppendV2(nil, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:25"), nil))
	f.Add(AppendV2(nil, netip.AddrPort{}, netip.AddrPort{}, nil))
	f.Add([]byte("EHLO client.example\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if errors.Is(err, ErrIncomplete) {
			if len(b) >= MaxLength {
				t.Fatalf("incomplete after %d bytes", len(b))
			}
			return
		}
		if err != nil {
			return
		}
		if h.Len <= 0 || h.Len > len(b) || h.Len > MaxLength || (h.Version == 1 && h.Len > MaxV1Len) {
			t.Fatalf("bad length %d of %d bytes", h.Len, len(b))
		}
		if h.Local == h.Source.IsValid() || h.Source.IsValid() != h.Dest.IsValid() {
			t.Fatalf("Local %v with source %v, dest %v", h.Local, h.Source, h.Dest)
		}
		if h2, err := Parse(b[:h.Len]); err != nil || h2 != h {
			t.Fatalf("alone: %+v, %v; with data: %+v", h2, err, h)
		}
		for k := 0; k < h.Len; k++ {
			if _, err := Parse(b[:k]); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("prefix of %d bytes: %v", k, err)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	src, dst := ap("192.0.2.7:56324"), ap("198.51.100.1:25")
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"v1", AppendV1(nil, src, dst)},
		{"v2", AppendV2(nil, src, dst, nil)},
		{"v2-ipv6", AppendV2(nil, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:25"), nil)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(c.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
