package outbound

import (
	"errors"
	"fmt"
	"io"

	"gannet/smtpwire"
)

// maxReplyBytes bounds one (multi-line) reply. RFC 5321 §4.5.3.1.5 limits a
// reply line to 512 octets; EHLO replies have many lines, so allow plenty
// but never an unbounded buffer.
const maxReplyBytes = 64 << 10

// errReplyTooLong: the server sent more than maxReplyBytes without ending a
// reply.
var errReplyTooLong = errors.New("server reply too long")

// replyReader reads server bytes from a connection into a buffer. Whole
// replies come out of read (the session: greeting, EHLO, STARTTLS, QUIT);
// a transaction takes the buffered bytes themselves (unread, consume) and
// parses them with its smtpwire.ClientTxn. Bytes that arrived past what was
// used (pipelined replies) stay for the next call.
type replyReader struct {
	r          io.Reader
	buf        []byte
	start, end int
}

func (rr *replyReader) reset(r io.Reader) {
	rr.r = r
	rr.start, rr.end = 0, 0
	if rr.buf == nil {
		rr.buf = make([]byte, 4096)
	}
}

// buffered returns how many unread bytes are held.
func (rr *replyReader) buffered() int { return rr.end - rr.start }

// unread returns the bytes read from the connection and not yet consumed.
func (rr *replyReader) unread() []byte { return rr.buf[rr.start:rr.end] }

// consume marks the first n unread bytes as used.
func (rr *replyReader) consume(n int) {
	rr.start += n
	if rr.start == rr.end {
		rr.start, rr.end = 0, 0
	}
}

// fill reads more bytes from the connection, making room first; it fails
// with errReplyTooLong when maxReplyBytes are held and more are wanted.
func (rr *replyReader) fill() error {
	if rr.start > 0 {
		rr.end = copy(rr.buf, rr.buf[rr.start:rr.end])
		rr.start = 0
	}
	if rr.end == len(rr.buf) {
		if len(rr.buf) >= maxReplyBytes {
			return errReplyTooLong
		}
		nb := make([]byte, 2*len(rr.buf))
		copy(nb, rr.buf[:rr.end])
		rr.buf = nb
	}
	n, err := rr.r.Read(rr.buf[rr.end:])
	rr.end += n
	if n == 0 && err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// read returns the next complete reply.
func (rr *replyReader) read() (smtpwire.Reply, error) {
	for {
		if rr.end > rr.start {
			rep, n, err := smtpwire.ParseReply(rr.unread())
			if err == nil {
				rr.consume(n)
				return rep, nil
			}
			if !errors.Is(err, smtpwire.ErrIncomplete) {
				return smtpwire.Reply{}, fmt.Errorf("malformed reply: %w", err)
			}
		}
		if err := rr.fill(); err != nil {
			return smtpwire.Reply{}, err
		}
	}
}
