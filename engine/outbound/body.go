package outbound

import (
	"bufio"
	"bytes"
	"encoding/binary"

	"gannet/smtpwire"
)

// maxKeptScratch: a scratch buffer that grew past this for one large body is
// dropped afterwards instead of being kept with the pooled connection.
const maxKeptScratch = 256 << 10

var (
	crlf    = []byte("\r\n")
	crlfDot = []byte("\r\n.")
	dotCRLF = []byte(".\r\n")
)

// writeBody writes the message body for DATA: dot-stuffed (RFC 5321
// §4.5.2: a line that starts with "." gets one more) and ended with
// ".<CRLF>".
//
// Bodies in the spool are already CRLF-clean (reception normalises them),
// so the usual path copies nothing: it hands the pieces of stuffedPieces to
// the buffered writer — which passes large slices straight to the
// connection. Only a body with bare CR or LF (crlfClean false: see
// cleanCRLF) is converted with smtpwire.AppendDotStuffed into scratch (one
// copy).
func writeBody(w *bufio.Writer, body []byte, crlfClean bool, scratch *[]byte) error {
	if !crlfClean {
		buf := smtpwire.AppendDotStuffed((*scratch)[:0], body)
		_, err := w.Write(buf)
		if cap(buf) > maxKeptScratch {
			buf = nil
		}
		*scratch = buf
		return err
	}
	var err error
	stuffedPieces(body, func(p []byte) bool {
		_, err = w.Write(p)
		return err == nil
	})
	return err
}

// stuffedPieces gives put, in order, the pieces of the DATA payload of a
// CRLF-clean body: slices of body, a "." before each line that starts with
// one (RFC 5321 §4.5.2), and the final ".\r\n". It stops when put returns
// false, and reports whether put took every piece.
func stuffedPieces(body []byte, put func([]byte) bool) bool {
	if len(body) > 0 && body[0] == '.' && !put(dotCRLF[:1]) {
		return false
	}
	rest := body
	for {
		i := bytes.Index(rest, crlfDot)
		if i < 0 {
			break
		}
		// Up to and including the CRLF, then the stuffed dot; the
		// line's own dot starts the next slice.
		if !put(rest[:i+2]) || !put(dotCRLF[:1]) {
			return false
		}
		rest = rest[i+2:]
	}
	return (len(rest) == 0 || put(rest)) && put(dotCRLF)
}

// cleanCRLF reports whether every line of body ends in CRLF and no CR or LF
// stands alone, including a final CRLF (an empty body is clean).
//
// Two vectorised counts settle most bodies: a body with as many CRs as LFs
// whose every LF follows a CR pairs each CR with the LF after it. The LFs
// are then visited one IndexByte each, a short call per line, instead of
// looking for the two-byte CRLF (bytes.Count(body, "\r\n") costs about
// three times as much on 100 KB of mail). newClientMessage asks bodyTraits,
// which on amd64 with AVX2 answers this and isASCIIBytes in one pass.
func cleanCRLF(body []byte) bool {
	if len(body) == 0 {
		return true
	}
	if !bytes.HasSuffix(body, crlf) || bytes.Count(body, crlf[1:]) != bytes.Count(body, crlf[:1]) {
		return false
	}
	for i := 0; ; {
		lf := bytes.IndexByte(body[i:], '\n')
		if lf < 0 {
			return true
		}
		i += lf
		if i == 0 || body[i-1] != '\r' {
			return false
		}
		i++
	}
}

// isASCIIBytes reports whether b holds only 7-bit bytes, 32 at a time: the
// high bits of four words are or-ed before one test.
func isASCIIBytes(b []byte) bool {
	const hi = 0x8080808080808080
	le := binary.LittleEndian
	for len(b) >= 32 {
		if (le.Uint64(b)|le.Uint64(b[8:])|le.Uint64(b[16:])|le.Uint64(b[24:]))&hi != 0 {
			return false
		}
		b = b[32:]
	}
	for len(b) >= 8 {
		if le.Uint64(b)&hi != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
