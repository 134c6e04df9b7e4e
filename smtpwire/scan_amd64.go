//go:build amd64 && !purego

package smtpwire

import "bytes"

// scanLinesSSE2 is cleanPrefix's loop in SSE2 (scan_amd64.s).
//
//go:noescape
func scanLinesSSE2(b []byte, i int) int

// cleanPrefix returns the length of a prefix of b made of whole lines that
// cleanLines would take — each ends in CRLF, holds no other CR or LF, and
// none but the first starts with "." — found 16 bytes at a time; 0 when
// it finds none. cleanLines goes on from there a line at a time.
func cleanPrefix(b []byte) int {
	if len(b) < 18 || b[0] == '\n' || b[0] == '\r' && b[1] != '\n' {
		return 0
	}
	stop := scanLinesSSE2(b, 1) // bytes 1 to stop need no care
	return bytes.LastIndexByte(b[:stop], '\n') + 1
}
