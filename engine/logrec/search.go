package logrec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// FilesMentioning returns the log files under dir (in LogFiles order)
// whose text holds needle, ASCII letters matched without regard to case:
// every field of every record is searched, the response texts too. Each
// file, plain or compressed, is read as a stream in fixed-size chunks, so
// memory stays bounded whatever the files' size. Erasure requests use it
// to say which retained files still name an address.
func FilesMentioning(dir, needle string) ([]string, error) {
	files, err := LogFiles(dir)
	if err != nil {
		return nil, err
	}
	want := []byte(strings.ToLower(needle))
	if len(want) == 0 {
		return nil, nil
	}
	var out []string
	buf := make([]byte, 64<<10+len(want))
	for _, path := range files {
		found, err := fileMentions(path, want, buf)
		if err != nil {
			return out, err
		}
		if found {
			out = append(out, filepath.Base(path))
		}
	}
	return out, nil
}

// fileMentions searches one file for want (lower case) in chunks of buf,
// each chunk starting with the last len(want)-1 bytes of the one before,
// so that a match across two reads is found.
func fileMentions(path string, want, buf []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) { // removed by retention meanwhile
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 64<<10)
	if strings.HasSuffix(path, ".zst") {
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return false, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	keep := 0
	for {
		n, err := io.ReadFull(r, buf[keep:])
		chunk := buf[:keep+n]
		lowerASCII(chunk[keep:])
		if bytes.Contains(chunk, want) {
			return true, nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", path, err)
		}
		keep = min(len(want)-1, len(chunk))
		copy(buf, chunk[len(chunk)-keep:])
	}
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}
