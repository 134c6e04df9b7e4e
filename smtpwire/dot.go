package smtpwire

import (
	"bytes"
	"errors"
	"slices"
)

// Errors reported by DotDecoder.Err after the end of a DATA body.
var (
	ErrMessageTooBig = &Error{Reply: ReplyTooBig, Cause: errors.New("smtpwire: message over the size limit")}
	ErrBareLF        = &Error{Reply: ReplyBareLF, Cause: errors.New("smtpwire: bare LF or CR line ending in DATA")}
)

// DotDecoder decodes a DATA body (RFC 5321 §4.5.2) as it arrives, in pieces
// of any size. It is a pure state machine: it keeps no bytes of its own, only
// a state, so it costs nothing per byte beyond copying the body out.
//
// The smuggling defence: the body ends only at <CR><LF>.<CR><LF>, where both
// line endings are real CRLF pairs (the DATA command's own CRLF counts as the
// first one for an empty body). A "." line that begins or ends with a bare LF
// or bare CR ("\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n") is ordinary content:
// it is kept as a "." line, which an encoder stuffs again to "..", so a
// message can never be split into two by a later hop.
//
// Other rules:
//   - Dot-unstuffing: a line that starts with "." and has more characters
//     loses its first dot. Lines are recognised after any line ending.
//   - Bare LF and bare CR are line endings that are written out as CRLF;
//     BareLineEndings reports whether any was seen, so that a listener with
//     the BareLFReject policy refuses the message (550 5.6.0) after its end.
//   - The size limit counts the decoded bytes. Past the limit nothing more is
//     appended to dst (no memory is spent on the excess), but the body is read
//     to its end, so the session stays in sync and can refuse with 552 5.3.4.
//   - There is no line-length limit: RFC 5321 §4.5.3.1.6 sets 1000 octets,
//     but refusing real mail over it helps nobody, and memory is bounded by
//     the size limit, since no line is ever buffered on its own.
type DotDecoder struct {
	max     int64 // <= 0: no limit
	size    int64
	state   uint8
	genuine bool // the current line start follows a real CRLF (or the start)
	bare    bool
	done    bool
}

// Decoder states.
const (
	dsStart uint8 = iota // at the start of a line
	dsMid                // inside a line
	dsCR                 // after a CR, waiting for LF
	dsDot                // after a "." at the start of a line
	dsDotCR              // after "." CR at the start of a line
)

var (
	crlf    = []byte("\r\n")
	dotCRLF = []byte(".\r\n")
)

// NewDotDecoder returns a decoder for one body of at most maxSize decoded
// bytes (maxSize <= 0: no limit).
func NewDotDecoder(maxSize int64) *DotDecoder {
	d := &DotDecoder{}
	d.Reset(maxSize)
	return d
}

// Reset prepares d for a new body.
func (d *DotDecoder) Reset(maxSize int64) {
	*d = DotDecoder{max: maxSize, genuine: true}
}

// Size returns the decoded size so far, including bytes past the limit that
// were not kept.
func (d *DotDecoder) Size() int64 { return d.size }

// TooBig reports that the decoded body exceeded the limit.
func (d *DotDecoder) TooBig() bool { return d.max > 0 && d.size > d.max }

// BareLineEndings reports that a bare LF or bare CR was seen (and turned into
// CRLF).
func (d *DotDecoder) BareLineEndings() bool { return d.bare }

// Done reports that the terminating "." line was seen.
func (d *DotDecoder) Done() bool { return d.done }

// Err returns ErrMessageTooBig when the body exceeded the limit, ErrBareLF
// when policy is BareLFReject and a bare line ending was seen, else nil.
func (d *DotDecoder) Err(policy BareLFPolicy) error {
	if d.TooBig() {
		return ErrMessageTooBig
	}
	if d.bare && policy == BareLFReject {
		return ErrBareLF
	}
	return nil
}

func (d *DotDecoder) emit(dst, b []byte) []byte {
	d.size += int64(len(b))
	if d.max > 0 && d.size > d.max {
		return dst
	}
	return append(dst, b...)
}

// Decode consumes bytes of p, appends the decoded body to dst and returns it,
// with the number of bytes used. done is true when the terminating line was
// consumed; the bytes after it (p[n:]) are the next commands.
func (d *DotDecoder) Decode(dst, p []byte) (out []byte, n int, done bool) {
	if d.done {
		return dst, 0, true
	}
	// slowTo: up to here, lines go one at a time (a span of lines
	// cleanLines looked at held a CR inside a line).
	i, slowTo := 0, 0
	for i < len(p) {
		switch d.state {
		case dsStart:
			switch p[i] {
			case '.':
				d.state = dsDot
				i++
				continue
			case '\r':
				d.state = dsCR
				i++
				continue
			case '\n':
				dst = d.emit(dst, crlf)
				d.bare, d.genuine = true, false
				i++
				continue
			}
			d.state = dsMid
			fallthrough
		case dsMid:
			// Fast path: whole CRLF lines up to the next one that starts
			// with "." are copied in one piece.
			if i >= slowTo {
				n, scanned := cleanLines(p[i:])
				if n < scanned {
					slowTo = i + scanned
				}
				if n > 0 {
					dst = d.emit(dst, p[i:i+n])
					d.genuine, d.state = true, dsStart
					i += n
					continue
				}
			}
			// One line: find its end with IndexByte and copy it in one
			// piece.
			rest := p[i:]
			lf := bytes.IndexByte(rest, '\n')
			seg := rest
			if lf >= 0 {
				seg = rest[:lf]
			}
			cr := bytes.IndexByte(seg, '\r')
			switch {
			case lf > 0 && cr == lf-1: // a line with its CRLF
				dst = d.emit(dst, rest[:lf+1])
				d.genuine, d.state = true, dsStart
				i += lf + 1
			case cr >= 0: // a CR before the end: decide on the next byte
				dst = d.emit(dst, seg[:cr])
				d.state = dsCR
				i += cr + 1
			case lf >= 0: // a bare LF
				dst = d.emit(dst, seg)
				dst = d.emit(dst, crlf)
				d.bare, d.genuine, d.state = true, false, dsStart
				i += lf + 1
			default: // no line end in p
				dst = d.emit(dst, seg)
				i = len(p)
			}
		case dsCR:
			if p[i] == '\n' {
				dst = d.emit(dst, crlf)
				d.genuine, d.state = true, dsStart
				i++
				continue
			}
			// A bare CR: a line ending; p[i] starts the next line.
			dst = d.emit(dst, crlf)
			d.bare, d.genuine, d.state = true, false, dsStart
		case dsDot:
			switch p[i] {
			case '\r':
				d.state = dsDotCR
				i++
			case '\n':
				// "." ended by a bare LF is content, never the end.
				dst = d.emit(dst, dotCRLF)
				d.bare, d.genuine, d.state = true, false, dsStart
				i++
			default:
				// RFC 5321 §4.5.2: drop the leading dot of a stuffed line.
				d.state = dsMid
			}
		case dsDotCR:
			if p[i] == '\n' {
				i++
				if d.genuine {
					d.done = true
					return dst, i, true
				}
				// "\n.\r\n": the line began after a bare LF: content.
				dst = d.emit(dst, dotCRLF)
				d.genuine, d.state = true, dsStart
				continue
			}
			// "." ended by a bare CR: content; p[i] starts the next line.
			dst = d.emit(dst, dotCRLF)
			d.bare, d.genuine, d.state = true, false, dsStart
		}
	}
	return dst, i, false
}

// cleanLines returns the length n of the longest prefix of b made of whole
// lines that end in CRLF and hold no other CR, where no line but the first
// starts with "." (b starts inside a line, or at the start of one that does
// not begin with "."): bytes the decoder passes on as they are. scanned is
// how far it looked; a prefix shorter than that ends at a line with a CR
// inside, and the caller takes the lines up to scanned one at a time, so
// that no byte is looked at twice here.
//
// On amd64 cleanPrefix takes the first lines 16 bytes at a time; then one
// IndexByte per line finds the line ends, and one vectorised count of the
// CRs over all of them checks that each is the one before an LF.
func cleanLines(b []byte) (n, scanned int) {
	k := cleanPrefix(b)
	if k > 0 && (k == len(b) || b[k] == '.') {
		return k, k
	}
	n, scanned = cleanLinesEach(b[k:])
	return k + n, k + scanned
}

// cleanLinesEach is cleanLines without cleanPrefix: the same answer, a line
// at a time.
func cleanLinesEach(b []byte) (n, scanned int) {
	lines := 0
	for {
		lf := bytes.IndexByte(b[n:], '\n')
		if lf < 1 || b[n+lf-1] != '\r' {
			break
		}
		n += lf + 1
		lines++
		if n == len(b) || b[n] == '.' {
			break
		}
	}
	if bytes.Count(b[:n], crlf[:1]) == lines {
		return n, n
	}
	scanned = n
	for n = 0; n < scanned; {
		lf := bytes.IndexByte(b[n:], '\n')
		if bytes.IndexByte(b[n:n+lf], '\r') != lf-1 {
			break
		}
		n += lf + 1
	}
	return n, scanned
}

// AppendDotStuffed appends body as a DATA payload (RFC 5321 §4.5.2): every
// line ends in CRLF (bare LF and bare CR become CRLF), a line that starts
// with "." gets a second one, a missing final CRLF is added, and the
// terminating ".\r\n" follows. An empty body gives just ".\r\n".
func AppendDotStuffed(dst, body []byte) []byte {
	dst = slices.Grow(dst, len(body)+len(body)/64+8)
	dst = appendLines(dst, body, true)
	return append(dst, '.', '\r', '\n')
}

// AppendNormalized appends body with every line ending made CRLF (bare LF and
// bare CR become CRLF) and a final CRLF added when body does not end with a
// line ending. It is what the decoder returns for an AppendDotStuffed body.
func AppendNormalized(dst, body []byte) []byte {
	return appendLines(dst, body, false)
}

func appendLines(dst, body []byte, stuff bool) []byte {
	for len(body) > 0 {
		if stuff && body[0] == '.' {
			dst = append(dst, '.')
		}
		lf := bytes.IndexByte(body, '\n')
		seg := body
		if lf >= 0 {
			seg = body[:lf]
		}
		cr := bytes.IndexByte(seg, '\r')
		switch {
		case lf > 0 && cr == lf-1:
			dst = append(dst, body[:lf+1]...)
			body = body[lf+1:]
		case cr >= 0: // bare CR
			dst = append(dst, seg[:cr]...)
			dst = append(dst, '\r', '\n')
			body = body[cr+1:]
		case lf >= 0: // bare LF
			dst = append(dst, seg...)
			dst = append(dst, '\r', '\n')
			body = body[lf+1:]
		default: // last line without a line ending
			dst = append(dst, seg...)
			dst = append(dst, '\r', '\n')
			body = nil
		}
	}
	return dst
}
