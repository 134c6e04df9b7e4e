// Package proxyproto parses the PROXY protocol header, versions 1 (text)
// and 2 (binary), that a TCP proxy such as HAProxy puts in front of a
// connection to tell the server who the client is (HAProxy's
// "proxy-protocol.txt", the 2020/03/05 revision shipped with HAProxy 2.6).
// Like smtpwire it does no I/O: the host peeks at the bytes it has read,
// calls Parse, and drops Header.Len bytes once a header is complete.
//
// Trust is the host's business: the spec (§2) wants a receiver that expects
// the header on every connection of a port, never guessing whether one is
// there, and that accepts it only from proxies it trusts.
package proxyproto

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
)

// Header is a parsed PROXY header.
type Header struct {
	Version int // 1 or 2
	// Local is set for a connection the proxy made for itself (a health
	// check: v2 LOCAL, §2.2), for "UNKNOWN" (v1, §2.1) and for a v2 PROXY
	// header with an unspecified or non-IP family (AF_UNSPEC, AF_UNIX,
	// §2.2): the host keeps the connection's real endpoints. Source and
	// Dest are then invalid.
	Local bool
	// Source is the client's address and port, Dest the address and port
	// it connected to (the proxy's frontend); IPv4 as 4-byte addresses.
	Source, Dest netip.AddrPort
	// Len is the header's length in bytes: the connection's data starts
	// after it.
	Len int
}

// Limits. A v1 line is at most 107 bytes with its CRLF (§2.1). A v2
// header is 16 bytes plus a 16-bit length (§2.2); what follows the
// addresses is TLVs (§2.2.1–2.2.7), of which HAProxy sends at most a few
// hundred bytes (unique id ≤ 128, SSL fields, authority). MaxV2Len bounds
// that length, so that a connection cannot make the host buffer 64 KiB
// before it answers.
const (
	MaxV1Len  = 107
	MaxV2Len  = 1024 // the v2 length field, without the 16-byte fixed part
	MaxLength = 16 + MaxV2Len
)

// Errors of Parse. Any error but ErrIncomplete means the connection must be
// dropped (§2.1: "Any sequence which does not exactly match the protocol
// must be discarded and cause the receiver to abort the connection").
var (
	// ErrIncomplete: the bytes so far are the start of a valid header; read
	// more (bounded: by then fewer than MaxLength bytes are buffered).
	ErrIncomplete = errors.New("proxyproto: incomplete header")
	// ErrNoHeader: the connection does not start with a PROXY header.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrMalformed: a header that breaks the spec (wrong version or
	// command, bad address, no CRLF within 107 bytes, …).
	ErrMalformed = errors.New("proxyproto: malformed PROXY protocol header")
	// ErrTooLong: a v2 header longer than MaxLength.
	ErrTooLong = errors.New("proxyproto: PROXY protocol v2 header too long")
	// ErrChecksum: a v2 PP2_TYPE_CRC32C TLV that does not match (§2.2.3).
	ErrChecksum = errors.New("proxyproto: PROXY protocol v2 checksum mismatch")
)

// v2Sig is the 12-byte signature of the binary format (§2.2).
var v2Sig = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// v1Prefix starts every text header (§2.1).
const v1Prefix = "PROXY "

// Parse parses the PROXY header at the start of b. It returns ErrIncomplete
// while b is a proper prefix of a header that could still be valid, and
// another error as soon as b cannot start one. Telling the versions apart
// follows §2.2's last paragraphs: the 12-byte signature, else "PROXY".
func Parse(b []byte) (Header, error) {
	if len(b) == 0 {
		return Header{}, ErrIncomplete
	}
	if b[0] == v2Sig[0] {
		return parseV2(b)
	}
	if b[0] == 'P' {
		return parseV1(b)
	}
	return Header{}, ErrNoHeader
}

// parseV1 parses the text format (§2.1):
//
//	"PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP srcport SP dstport CRLF
//	"PROXY" SP "UNKNOWN" [anything] CRLF
func parseV1(b []byte) (Header, error) {
	n := min(len(b), len(v1Prefix))
	if string(b[:n]) != v1Prefix[:n] {
		return Header{}, ErrNoHeader
	}
	// The receiver must wait for the CRLF; none within 107 bytes makes the
	// line invalid, and a lone CR or LF never ends it.
	end := -1
	for i := 0; i < len(b) && i < MaxV1Len; i++ {
		if b[i] == '\n' {
			if i == 0 || b[i-1] != '\r' {
				return Header{}, ErrMalformed
			}
			end = i + 1
			break
		}
		if b[i] == '\r' && i+1 < len(b) && b[i+1] != '\n' {
			return Header{}, ErrMalformed
		}
	}
	if end < 0 {
		if len(b) >= MaxV1Len {
			return Header{}, ErrMalformed
		}
		return Header{}, ErrIncomplete
	}
	line := string(b[len(v1Prefix) : end-2])
	h := Header{Version: 1, Len: end}
	proto, rest, _ := cut(line)
	switch proto {
	case "UNKNOWN":
		// The receiver must ignore anything before the CRLF.
		h.Local = true
		return h, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, ErrMalformed
	}
	var f [4]string
	for i := range f {
		var ok bool
		f[i], rest, ok = cut(rest)
		if ok != (i < 3) {
			return Header{}, ErrMalformed // too few or too many fields
		}
	}
	src, err1 := parseV1Addr(f[0], proto == "TCP4")
	dst, err2 := parseV1Addr(f[1], proto == "TCP4")
	sp, ok1 := parsePort(f[2])
	dp, ok2 := parsePort(f[3])
	if err1 != nil || err2 != nil || !ok1 || !ok2 {
		return Header{}, ErrMalformed
	}
	h.Source = netip.AddrPortFrom(src, sp)
	h.Dest = netip.AddrPortFrom(dst, dp)
	return h, nil
}

// cut splits s at its first space; ok reports whether there was one. An
// empty field (two spaces) stays empty and fails later.
func cut(s string) (field, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// parseV1Addr parses an address of the family the line announced: IPv4 as
// four decimal numbers without leading zeroes (netip refuses those), IPv6
// in its hexadecimal form without a zone or an embedded IPv4 dotted quad
// being refused only where netip refuses it.
func parseV1Addr(s string, v4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, err
	}
	if v4 != a.Is4() || a.Zone() != "" {
		return netip.Addr{}, ErrMalformed
	}
	return a, nil
}

// parsePort parses a decimal port in [0, 65535] without leading zeroes.
func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// Version 2 fields (§2.2).
const (
	v2CmdLocal = 0x0
	v2CmdProxy = 0x1

	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3

	protoUnspec = 0x0
	protoStream = 0x1
	protoDgram  = 0x2

	tlvCRC32C = 0x03 // PP2_TYPE_CRC32C, §2.2.3
)

// parseV2 parses the binary format (§2.2).
func parseV2(b []byte) (Header, error) {
	n := min(len(b), len(v2Sig))
	if string(b[:n]) != string(v2Sig[:n]) {
		return Header{}, ErrNoHeader
	}
	if len(b) >= 13 && b[12]>>4 != 2 {
		return Header{}, ErrMalformed // the version must be 2
	}
	if len(b) < 16 {
		return Header{}, ErrIncomplete
	}
	cmd, fam, proto := b[12]&0x0F, b[13]>>4, b[13]&0x0F
	// "Receivers must drop connections presenting unexpected values" for
	// the command; families and protocols past those listed "must be
	// rejected as invalid".
	if cmd > v2CmdProxy || fam > famUnix || proto > protoDgram {
		return Header{}, ErrMalformed
	}
	alen := int(binary.BigEndian.Uint16(b[14:16]))
	if alen > MaxV2Len {
		return Header{}, ErrTooLong
	}
	total := 16 + alen
	if len(b) < total {
		return Header{}, ErrIncomplete
	}
	h := Header{Version: 2, Len: total}
	body := b[16:total]
	var tlvs []byte
	switch {
	case fam == famInet && proto != protoUnspec:
		if alen < 12 {
			return Header{}, ErrMalformed
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
		tlvs = body[12:]
	case fam == famInet6 && proto != protoUnspec:
		if alen < 36 {
			return Header{}, ErrMalformed
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])).Unmap(), binary.BigEndian.Uint16(body[32:34]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])).Unmap(), binary.BigEndian.Uint16(body[34:36]))
		tlvs = body[36:]
	case fam == famUnix && proto != protoUnspec:
		if alen < 216 {
			return Header{}, ErrMalformed
		}
		tlvs = body[216:]
	}
	// LOCAL: "the receiver must accept this connection as valid and must
	// use the real connection endpoints". UNSPEC (and AF_UNIX, which is not
	// an IP client): "free to accept the connection anyway and use the
	// real endpoints" — accepted, as a health check would be.
	if cmd == v2CmdLocal || !h.Source.IsValid() {
		h.Local = true
		h.Source, h.Dest = netip.AddrPort{}, netip.AddrPort{}
	}
	if tlvs != nil {
		if err := checkTLVs(b[:total], len(b[:total])-len(tlvs)); err != nil {
			return Header{}, err
		}
	}
	return h, nil
}

// checkTLVs walks the TLVs of hdr starting at off (type, 16-bit length,
// value; §2.2): they must fill the rest exactly. A CRC32C TLV is checked,
// as §2.2.3 requires of a receiver that supports it: the CRC32c of the
// whole header with the checksum's 4 bytes zeroed.
func checkTLVs(hdr []byte, off int) error {
	for i := off; i < len(hdr); {
		if len(hdr)-i < 3 {
			return ErrMalformed
		}
		typ, vlen := hdr[i], int(binary.BigEndian.Uint16(hdr[i+1:i+3]))
		v := i + 3
		if len(hdr)-v < vlen {
			return ErrMalformed
		}
		if typ == tlvCRC32C {
			if vlen != 4 {
				return ErrMalformed
			}
			want := binary.BigEndian.Uint32(hdr[v : v+4])
			h := crc32.New(crcTable)
			h.Write(hdr[:v])
			h.Write([]byte{0, 0, 0, 0})
			h.Write(hdr[v+4:])
			if h.Sum32() != want {
				return ErrChecksum
			}
		}
		i = v + vlen
	}
	return nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)
