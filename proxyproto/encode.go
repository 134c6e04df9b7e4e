package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// AppendV1 appends the text header (§2.1) for a TCP connection from src to
// dst, or "PROXY UNKNOWN" when src is invalid. Both addresses must be of
// one family.
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	if !src.IsValid() {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	proto := "TCP4 "
	if src.Addr().Is6() {
		proto = "TCP6 "
	}
	b = append(b, v1Prefix...)
	b = append(b, proto...)
	b = src.Addr().AppendTo(b)
	b = append(b, ' ')
	b = dst.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, "\r\n"...)
}

// AppendV2 appends the binary header (§2.2) for a TCP connection from src
// to dst followed by tlvs (already encoded), or a LOCAL header when src is
// invalid. Both addresses must be of one family.
func AppendV2(b []byte, src, dst netip.AddrPort, tlvs []byte) []byte {
	b = append(b, v2Sig[:]...)
	if !src.IsValid() {
		b = append(b, 0x20|v2CmdLocal, famUnspec<<4|protoUnspec)
		b = binary.BigEndian.AppendUint16(b, uint16(len(tlvs)))
		return append(b, tlvs...)
	}
	b = append(b, 0x20|v2CmdProxy)
	if src.Addr().Is4() {
		b = append(b, famInet<<4|protoStream)
		b = binary.BigEndian.AppendUint16(b, uint16(12+len(tlvs)))
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(append(b, s[:]...), d[:]...)
	} else {
		b = append(b, famInet6<<4|protoStream)
		b = binary.BigEndian.AppendUint16(b, uint16(36+len(tlvs)))
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	return append(b, tlvs...)
}
