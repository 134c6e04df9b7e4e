package dkim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math/bits"
)

var (
	crlf = []byte("\r\n")
	sp   = []byte(" ")
)

// bodyHash returns the SHA-256 of the relaxed canonical form of body (RFC
// 6376 §3.4.4, hashed as §3.4.5 and §3.7 say, "bh="):
//
//   - a run of SP and HTAB inside a line becomes one SP;
//   - SP and HTAB at the end of a line are removed;
//   - empty lines at the end of the body are removed, and a body that is not
//     empty after that ends with one CRLF; an empty body stays empty (the
//     RFC's erratum 1384: its hash is the SHA-256 of nothing, not of CRLF).
//
// Line ends are repaired the way go-msgauth's signer and verifier do it, so
// that the hash is the same as theirs for any body: an LF without a CR
// before it counts as CRLF, and a CR without an LF after it is an ordinary
// byte (white space before it is removed as before a line end).
//
// It makes one pass over body and hands the hash large spans of it in
// place: most lines need no change, so a plain-text body is usually one
// Write. Short pieces (text with many changes) are gathered into a buffer
// first, so that each Write is worth its call (a cgo call in a BoringCrypto
// build). Nothing is allocated but the hash state and that buffer.
func bodyHash(body []byte) [sha256.Size]byte {
	// Everything from the last byte that is not SP, HTAB, CR or LF on is
	// trailing white space and empty lines: dropped (§3.4.4 a, b).
	end := len(body)
	for end > 0 && isWSPorEOL(body[end-1]) {
		end--
	}
	if end == 0 {
		return sha256.Sum256(nil)
	}
	h := spanHasher{h: sha256.New()}
	writeRelaxedBody(&h, body[:end])
	h.flush()
	h.h.Write(crlf)
	var sum [sha256.Size]byte
	h.h.Sum(sum[:0])
	return sum
}

// spanHasher writes spans to a hash: a long one directly, short ones
// gathered into buf.
type spanHasher struct {
	h   hash.Hash
	buf []byte
}

// spanDirect is the length from which a span is written to the hash
// directly; spanBuffer the size of the buffer for shorter ones.
const (
	spanDirect = 512
	spanBuffer = 8 << 10
)

func (w *spanHasher) write(p []byte) {
	if len(p) >= spanDirect {
		w.flush()
		w.h.Write(p)
		return
	}
	if len(w.buf)+len(p) > cap(w.buf) {
		w.flush()
		if w.buf == nil {
			w.buf = make([]byte, 0, spanBuffer)
		}
	}
	w.buf = append(w.buf, p...)
}

func (w *spanHasher) flush() {
	if len(w.buf) > 0 {
		w.h.Write(w.buf)
		w.buf = w.buf[:0]
	}
}

func isWSPorEOL(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// writeRelaxedBody writes the relaxed canonical form of body to h, body
// ending with a byte that is not white space or a line end (bodyHash trims
// it). Unchanged bytes are written as spans of body; the only bytes written
// from elsewhere are the SP that replaces a longer run of white space and
// the CRLF that replaces a bare LF. skipPlain (AVX2, where there is) and
// then nextSpecial find the next byte that may need a change.
func writeRelaxedBody(h *spanHasher, body []byte) {
	n := len(body)
	start := 0 // first byte not yet written
	for i := 0; ; {
		j := nextSpecial(body, skipPlain(body, i))
		if j == n {
			break
		}
		switch c := body[j]; c {
		case '\r':
			i = j + 1
			if i < n && body[i] == '\n' {
				i++ // CRLF: unchanged
			}
		case '\n':
			i = j + 1
			if j > 0 && body[j-1] == '\r' {
				continue
			}
			h.write(body[start:j]) // bare LF: CRLF
			h.write(crlf)
			start = i
		case ' ', '\t':
			k := j + 1
			for body[k] == ' ' || body[k] == '\t' { // body does not end with WSP
				k++
			}
			i = k
			switch {
			case body[k] == '\r' || body[k] == '\n': // at a line end: removed
				h.write(body[start:j])
				start = k
			case k == j+1 && c == ' ': // one SP: unchanged
			default: // a longer run or an HTAB: one SP
				h.write(body[start:j])
				h.write(sp)
				start = k
			}
		default: // another control character: unchanged
			i = j + 1
		}
	}
	h.write(body[start:])
}

// SWAR constants: the same byte in every byte of a word.
const (
	low7s  = 0x7f7f7f7f7f7f7f7f
	high1s = 0x8080808080808080
	ones   = 0x0101010101010101
)

// nextSpecial returns the index of the first byte of body at or after i
// that may need a change (or len(body)): a byte <= 0x20 other than a single
// SP between two printable bytes. Eight bytes are tested at a time; a space
// followed by another byte <= 0x20 (two spaces, SP CR) is a hit, one
// followed by a word character is not, so ordinary text stops only at line
// ends. It is the portable scan: on amd64 skipPlain has passed most bytes
// before it is called.
func nextSpecial(body []byte, i int) int {
	n := len(body)
	for ; i+9 <= n; i += 8 {
		w := body[i : i+9] // one bounds check for both loads
		x := binary.LittleEndian.Uint64(w)
		next := binary.LittleEndian.Uint64(w[1:])
		a := x & low7s
		// High bit of each byte: byte <= 0x20 (and < 0x80).
		ctl := ^((a + 0x5f*ones) | x) & high1s
		if ctl == 0 {
			continue
		}
		space := ctl & (a + 0x60*ones) // <= 0x20 and >= 0x20
		nextCtl := ^(((next & low7s) + 0x5f*ones) | next) & high1s
		if hit := ctl &^ (space &^ nextCtl); hit != 0 {
			return i + bits.TrailingZeros64(hit)/8
		}
	}
	for ; i < n; i++ {
		if c := body[i]; c <= ' ' && (c != ' ' || i+1 == n || body[i+1] <= ' ') {
			return i
		}
	}
	return n
}

// appendRelaxedField appends the relaxed form of a named field of the
// message (appendRelaxedHeader).
func appendRelaxedField(dst []byte, f field) []byte {
	return appendRelaxedHeader(dst, f.Name, f.Raw[bytes.IndexByte(f.Raw, ':')+1:])
}

// appendRelaxedHeader appends the relaxed canonical form of one header
// field (RFC 6376 §3.4.2) to dst, with its CRLF: the name in lower case,
// then ':', then the value unfolded, each run of SP and HTAB made one SP,
// and white space at its start and end removed. name is the field name
// without white space before the colon, value everything after the colon
// (folding and final line end included).
func appendRelaxedHeader(dst, name, value []byte) []byte {
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, ':')
	wsp, started := false, false
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == '\r' && i+1 < len(value) && value[i+1] == '\n':
			i++ // unfolding: the CRLF before a continuation line goes
		case c == '\n': // a line end without CR (msgheader accepts it)
		case c == ' ' || c == '\t':
			wsp = true
		default:
			if wsp && started {
				dst = append(dst, ' ')
			}
			wsp, started = false, true
			dst = append(dst, c)
		}
	}
	return append(dst, crlf...)
}
