//go:build amd64 && !purego

#include "textflag.h"

// lfcrdot: 16 times LF, 16 times CR, 16 times ".".
DATA lfcrdot<>+0(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA lfcrdot<>+8(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA lfcrdot<>+16(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA lfcrdot<>+24(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA lfcrdot<>+32(SB)/8, $0x2e2e2e2e2e2e2e2e
DATA lfcrdot<>+40(SB)/8, $0x2e2e2e2e2e2e2e2e
GLOBL lfcrdot<>(SB), RODATA|NOPTR, $48

// func scanLinesSSE2(b []byte, i int) int
//
// From i (1 <= i), 16 bytes at a time (SSE2, which every amd64 CPU has)
// while a whole block and the bytes on either side of it are in b: returns
// the offset of the first byte that ends the decoder's fast path — an LF
// without a CR before it, a CR without an LF after it, a "." right after
// an LF — or the offset of the first block it could not test.
TEXT ·scanLinesSSE2(SB), NOSPLIT, $0-40
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), DX
	MOVQ i+24(FP), AX

	MOVOU lfcrdot<>+0(SB), X12  // LF
	MOVOU lfcrdot<>+16(SB), X13 // CR
	MOVOU lfcrdot<>+32(SB), X14 // "."

	LEAQ 17(AX), CX
	CMPQ CX, DX
	JA   done

loop:
	MOVOU   (SI)(AX*1), X0  // the block
	MOVOU   1(SI)(AX*1), X1 // the byte after each
	MOVOU   -1(SI)(AX*1), X2 // the byte before each
	MOVO    X0, X3
	PCMPEQB X12, X3         // LF
	MOVO    X2, X4
	PCMPEQB X13, X4         // CR before
	PANDN   X3, X4          // LF without CR before
	MOVO    X0, X5
	PCMPEQB X13, X5         // CR
	MOVO    X1, X6
	PCMPEQB X12, X6         // LF after
	PANDN   X5, X6          // CR without LF after
	MOVO    X0, X7
	PCMPEQB X14, X7         // "."
	MOVO    X2, X8
	PCMPEQB X12, X8         // LF before
	PAND    X8, X7          // "." starting a line
	POR     X4, X6
	POR     X6, X7
	PMOVMSKB X7, BX
	TESTL   BX, BX
	JNZ     found
	ADDQ    $16, AX
	LEAQ    17(AX), CX
	CMPQ    CX, DX
	JBE     loop

done:
	MOVQ AX, ret+32(FP)
	RET

found:
	BSFL BX, BX
	ADDQ BX, AX
	MOVQ AX, ret+32(FP)
	RET
