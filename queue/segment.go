package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression names the codec that compresses message bodies in segments.
// Each record carries its codec in its flags, so a spool reads records of
// every codec whatever Options.Compression says now.
type Compression uint8

const (
	// CompressNone stores bodies as they are.
	CompressNone Compression = 0
	// CompressZstd is zstd at SpeedFastest, one frame per message (default).
	CompressZstd Compression = 1
	// CompressS2 is klauspost's S2 (a faster, Snappy-like codec).
	CompressS2 Compression = 2
)

// ParseCompression maps the config value ("zstd", "s2", "none"; "" means
// zstd) to a Compression.
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(s) {
	case "", "zstd":
		return CompressZstd, nil
	case "s2":
		return CompressS2, nil
	case "none":
		return CompressNone, nil
	}
	return 0, fmt.Errorf("queue: unknown compression %q (want zstd, s2 or none)", s)
}

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressZstd:
		return "zstd"
	case CompressS2:
		return "s2"
	}
	return "compression(" + strconv.Itoa(int(c)) + ")"
}

// Record layout (all integers little-endian); see doc.go for the picture.
const (
	recordMagic   = "GnRc"
	recordVersion = 1
	// recordHeaderLen is the fixed part before the id.
	recordHeaderLen = 20
	// flagCodecMask selects the Compression bits of the flags byte.
	flagCodecMask = 0x03
	// MaxIDLen is the longest message id a record can hold.
	MaxIDLen = 255
	// maxRawLen bounds the decompressed size a record may claim, so that a
	// corrupt length never makes a reader allocate gigabytes.
	maxRawLen = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is the "corrupt entry" outcome: a record that is torn (cut off
// by a crash mid-write), fails its CRC, has a bad header, or does not
// decompress. It is never a panic, and it concerns one message only: the rest
// of the spool keeps working. Test with errors.Is(err, ErrCorrupt).
var ErrCorrupt = errors.New("queue: corrupt spool record")

// errTorn is wrapped with ErrCorrupt when a record runs past the bytes
// available: the tail of a segment that a crash cut short.
var errTorn = errors.New("record truncated")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// recordView is a decoded record; its slices alias the input buffer.
type recordView struct {
	ID      []byte
	Codec   Compression
	Payload []byte // stored (possibly compressed) body
	RawLen  int    // decompressed body length
}

// recordLen is the encoded size of a record holding id and payload.
func recordLen(idLen, payloadLen int) int { return recordHeaderLen + idLen + payloadLen }

// decodeRecord parses the record at the start of b and returns it with its
// encoded length. A record that runs past the end of b is reported as torn;
// any inconsistency is reported as corrupt. Both wrap ErrCorrupt. It never
// panics, whatever b holds.
func decodeRecord(b []byte) (recordView, int, error) {
	var v recordView
	if len(b) < recordHeaderLen {
		return v, 0, fmt.Errorf("%w: %w: %d header bytes of %d", ErrCorrupt, errTorn, len(b), recordHeaderLen)
	}
	if string(b[0:4]) != recordMagic {
		return v, 0, corruptf("bad magic %q", b[0:4])
	}
	if b[4] != recordVersion {
		return v, 0, corruptf("unknown record version %d", b[4])
	}
	flags := b[5]
	if flags&^flagCodecMask != 0 || Compression(flags&flagCodecMask) > CompressS2 {
		return v, 0, corruptf("unknown flags %#x", flags)
	}
	idLen := int(b[6])
	if b[7] != 0 {
		return v, 0, corruptf("reserved byte %#x", b[7])
	}
	bodyLen := binary.LittleEndian.Uint32(b[8:12])
	rawLen := binary.LittleEndian.Uint32(b[12:16])
	if rawLen > maxRawLen || bodyLen > maxRawLen+maxRawLen/8+1024 {
		return v, 0, corruptf("lengths out of range (stored %d, raw %d)", bodyLen, rawLen)
	}
	n := recordLen(idLen, int(bodyLen))
	if len(b) < n {
		return v, 0, fmt.Errorf("%w: %w: have %d of %d bytes", ErrCorrupt, errTorn, len(b), n)
	}
	want := binary.LittleEndian.Uint32(b[16:20])
	crc := crc32.Update(0, castagnoli, b[:16])
	crc = crc32.Update(crc, castagnoli, b[recordHeaderLen:n])
	if crc != want {
		return v, 0, corruptf("checksum mismatch (stored %08x, computed %08x)", want, crc)
	}
	v.Codec = Compression(flags & flagCodecMask)
	v.ID = b[recordHeaderLen : recordHeaderLen+idLen]
	v.Payload = b[recordHeaderLen+idLen : n]
	v.RawLen = int(rawLen)
	if v.Codec == CompressNone && int(bodyLen) != v.RawLen {
		return v, 0, corruptf("uncompressed record with stored %d != raw %d", bodyLen, rawLen)
	}
	return v, n, nil
}

// codecs holds the compressors a spool shares between goroutines. One zstd
// encoder's EncodeAll and one decoder's DecodeAll are safe for concurrent
// use; each keeps its own pool of state.
type codecs struct {
	use Compression
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newCodecs(use Compression) (*codecs, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderCRC(false), // the record has its own CRC32C
		zstd.WithZeroFrames(true),
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(maxRawLen),
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		enc.Close()
		return nil, err
	}
	return &codecs{use: use, enc: enc, dec: dec}, nil
}

func (c *codecs) close() {
	c.enc.Close()
	c.dec.Close()
}

// Which codec stores a body (codecFor). The configured codec is the rule
// for a body below largeBody bytes: most mail, cheap to compress. A larger
// body is stored as it is instead when compressing it costs more CPU than
// it is worth:
//
//   - with "s2" (the CPU setting), always. Measured end to end (gannet
//     serve relaying bin/smtpblast to bin/smtpsink, no DKIM, Gannet's CPU
//     seconds per 1000 messages, one binary): 2 KB s2 0.162, none 0.168;
//     8 KB 0.218, 0.186; 16 KB 0.304, 0.184; 32 KB 0.34–0.38, 0.24–0.25.
//     S2 costs about 2.5 ms per MB to compress and 1 ms to decompress on
//     that loaded 2-core machine, more than receiving, storing and sending
//     the bytes otherwise costs; a large message usually leaves the spool
//     within seconds, so the disk it would save is short-lived.
//   - with "zstd" (the disk setting), when the body does not compress:
//     base64 of images, PDFs and archives, already compressed content. An
//     S2 estimate over sampleLen bytes from its middle
//     (s2.EstimateBlockSize, a few µs) decides: when it saves less than
//     1/8, the body is stored as it is. Without the check zstd spends about
//     2.4 ms per MB on such a body to save a fifth of it, and decompresses
//     it again for each delivery.
const (
	largeBody = 16 << 10
	sampleLen = 4 << 10
)

// codecFor is the codec that stores body: see largeBody.
func (c *codecs) codecFor(body []byte) Compression {
	switch {
	case c.use == CompressNone || len(body) < largeBody:
		return c.use
	case c.use == CompressS2:
		return CompressNone
	}
	mid := len(body) / 2
	sample := body[mid-sampleLen/2 : mid+sampleLen/2]
	if n := s2.EstimateBlockSize(sample); n < 0 || n > sampleLen-sampleLen/8 {
		return CompressNone
	}
	return c.use
}

// maxRecordLen is the capacity a record for (id, body) stored with codec
// needs at most, so that appendRecord writes into one allocation. For zstd,
// whose bound is about the input size, it is a guess for mail (which
// compresses 2–4×); EncodeAll grows the buffer when the guess is short.
func maxRecordLen(codec Compression, idLen, bodyLen int) int {
	switch codec {
	case CompressS2:
		return recordLen(idLen, s2.MaxEncodedLen(bodyLen))
	case CompressNone:
		return recordLen(idLen, bodyLen)
	}
	return recordLen(idLen, bodyLen/2+64)
}

// appendRecord appends the record for (id, body) compressed with codec to
// dst and returns it.
func (c *codecs) appendRecord(dst []byte, codec Compression, id string, body []byte) []byte {
	start := len(dst)
	dst = appendRecordHead(dst, codec, id)
	p0 := len(dst)
	switch codec {
	case CompressZstd:
		dst = c.enc.EncodeAll(body, dst)
	case CompressS2:
		n := s2.MaxEncodedLen(len(body))
		if cap(dst)-len(dst) < n {
			grown := make([]byte, len(dst), len(dst)+n)
			copy(grown, dst)
			dst = grown
		}
		enc := s2.Encode(dst[len(dst):len(dst)+n], body)
		dst = dst[:len(dst)+len(enc)]
	default:
		dst = append(dst, body...)
	}
	sealRecord(dst[start:], len(dst)-p0, len(body), nil)
	return dst
}

// appendRawHead appends the head of the CompressNone record for (id, body)
// — its header and id, with the lengths and the CRC of the whole record —
// but not body itself: the writer puts body right after it in the segment
// (appendReq.payload), so that a large body stored as it is is not copied
// into a record buffer first.
func appendRawHead(dst []byte, id string, body []byte) []byte {
	start := len(dst)
	dst = appendRecordHead(dst, CompressNone, id)
	sealRecord(dst[start:], len(body), len(body), body)
	return dst
}

// appendRecordHead appends the header of a record, lengths and CRC left
// zero (sealRecord fills them in), and its id.
func appendRecordHead(dst []byte, codec Compression, id string) []byte {
	dst = append(dst, recordMagic...)
	dst = append(dst, recordVersion, byte(codec), byte(len(id)), 0)
	dst = append(dst, make([]byte, 12)...) // lengths and CRC, filled by sealRecord
	return append(dst, id...)
}

// sealRecord fills in the lengths and the CRC of the record h starts with:
// the CRC covers the header's first 16 bytes, then everything after the
// header — the bytes of h past it, then tail, the payload when it is not in
// h (appendRawHead).
func sealRecord(h []byte, payloadLen, rawLen int, tail []byte) {
	binary.LittleEndian.PutUint32(h[8:12], uint32(payloadLen))
	binary.LittleEndian.PutUint32(h[12:16], uint32(rawLen))
	crc := crc32.Update(0, castagnoli, h[:16])
	crc = crc32.Update(crc, castagnoli, h[recordHeaderLen:])
	crc = crc32.Update(crc, castagnoli, tail)
	binary.LittleEndian.PutUint32(h[16:20], crc)
}

// decompress returns the body of a decoded record in a new slice.
func (c *codecs) decompress(v recordView) ([]byte, error) {
	var out []byte
	var err error
	switch v.Codec {
	case CompressNone:
		out = append(make([]byte, 0, len(v.Payload)), v.Payload...)
	case CompressZstd:
		out, err = c.dec.DecodeAll(v.Payload, make([]byte, 0, v.RawLen))
	case CompressS2:
		var n int
		n, err = s2.DecodedLen(v.Payload)
		if err == nil && n != v.RawLen {
			err = fmt.Errorf("s2 length %d, record says %d", n, v.RawLen)
		}
		if err == nil {
			out, err = s2.Decode(make([]byte, n), v.Payload)
		}
	default:
		err = fmt.Errorf("unknown codec %d", v.Codec)
	}
	if err != nil {
		return nil, corruptf("%s body of %q: %v", v.Codec, v.ID, err)
	}
	if len(out) != v.RawLen {
		return nil, corruptf("body of %q is %d bytes, record says %d", v.ID, len(out), v.RawLen)
	}
	return out, nil
}

// Segment files are named by a 16-hex-digit sequence number that only grows.
const segmentExt = ".seg"

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

// parseSegmentName returns the sequence number of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil
}

// storedAsIs reports whether the record at off in f looks uncompressed by
// its flags byte alone (readRecord verifies it), read into flags[0].
func storedAsIs(f File, off int64, flags []byte) bool {
	_, err := f.ReadAt(flags[:1], off+5)
	return err == nil && Compression(flags[0]&flagCodecMask) == CompressNone
}

// errOtherID is the error of readRecord for a whole, valid record that
// belongs to another message than the one asked for. It is an ErrCorrupt.
var errOtherID = corruptf("record of another message")

// readRecord reads and verifies the record of length n at off in f, and
// checks that it belongs to id. It returns the decoded record and the raw
// record bytes it aliases: they are read into buf when it has room for
// them (a pooled buffer), else into a new slice.
func readRecord(f File, off, n int64, id string, buf []byte) (recordView, []byte, error) {
	if n < recordHeaderLen || n > maxRawLen*2 {
		return recordView{}, nil, corruptf("message %s: record length %d out of range", id, n)
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := f.ReadAt(buf, off)
	if err != nil && !(errors.Is(err, io.EOF) && got == len(buf)) {
		if !errors.Is(err, io.EOF) {
			return recordView{}, nil, err
		}
		// The segment ends inside the record: torn by a crash.
		buf = buf[:got]
	}
	v, m, err := decodeRecord(buf)
	if err != nil {
		return recordView{}, nil, fmt.Errorf("message %s: %w", id, err)
	}
	if int64(m) != n {
		return recordView{}, nil, corruptf("message %s: record is %d bytes, index says %d", id, m, n)
	}
	if string(v.ID) != id {
		return recordView{}, nil, fmt.Errorf("%w: record at offset %d holds %q, not %q", errOtherID, off, v.ID, id)
	}
	return v, buf, nil
}
