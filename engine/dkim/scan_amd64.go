//go:build amd64 && !purego

package dkim

import "golang.org/x/sys/cpu"

// useAVX2 is set where scanAVX2 may run.
var useAVX2 = cpu.X86.HasAVX2

// scanAVX2 is skipPlain's loop in AVX2 (scan_amd64.s).
//
//go:noescape
func scanAVX2(body []byte, i int) int

// skipPlain returns the first offset at or after i whose byte may need a
// change in the relaxed body, testing 32 bytes at a time with AVX2 where
// the CPU has it: bytes before the offset need none. Near the ends of body
// and without AVX2 it returns i, and nextSpecial goes on from there.
func skipPlain(body []byte, i int) int {
	if !useAVX2 {
		return i
	}
	if i == 0 { // scanAVX2 reads the byte before each
		if len(body) == 0 || body[0] <= ' ' {
			return 0
		}
		i = 1
	}
	if i+33 > len(body) {
		return i
	}
	return scanAVX2(body, i)
}
