//go:build amd64 && !purego

#include "textflag.h"

// lfcr: 32 times LF, then 32 times CR.
DATA lfcr<>+0(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA lfcr<>+8(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA lfcr<>+16(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA lfcr<>+24(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA lfcr<>+32(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA lfcr<>+40(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA lfcr<>+48(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA lfcr<>+56(SB)/8, $0x0d0d0d0d0d0d0d0d
GLOBL lfcr<>(SB), RODATA|NOPTR, $64

// func scanLinesAVX2(b []byte, i int) (end int, bad bool, high bool)
//
// From i (1 <= i), 32 bytes at a time while a whole block and the bytes
// on either side of it are in b, up to end (the first offset not
// tested): bad is whether a tested byte is an LF without a CR before it
// or a CR without an LF after it; high is whether a tested byte has its
// high bit set (is not 7-bit).
TEXT ·scanLinesAVX2(SB), NOSPLIT, $0-42
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), DX
	MOVQ i+24(FP), AX

	VMOVDQU lfcr<>+0(SB), Y12  // LF
	VMOVDQU lfcr<>+32(SB), Y13 // CR
	VPXOR   Y8, Y8, Y8         // bad bytes so far
	VPXOR   Y9, Y9, Y9         // every byte or-ed

	LEAQ 33(AX), CX
	CMPQ CX, DX
	JA   done

loop:
	VMOVDQU  (SI)(AX*1), Y0   // the block
	VMOVDQU  1(SI)(AX*1), Y1  // the byte after each
	VMOVDQU  -1(SI)(AX*1), Y2 // the byte before each
	VPOR     Y0, Y9, Y9
	VPCMPEQB Y0, Y12, Y3      // LF
	VPCMPEQB Y2, Y13, Y4      // CR before
	VPANDN   Y3, Y4, Y3       // LF without CR before
	VPCMPEQB Y0, Y13, Y5      // CR
	VPCMPEQB Y1, Y12, Y6      // LF after
	VPANDN   Y5, Y6, Y5       // CR without LF after
	VPOR     Y3, Y8, Y8
	VPOR     Y5, Y8, Y8
	ADDQ     $32, AX
	LEAQ     33(AX), CX
	CMPQ     CX, DX
	JBE      loop

done:
	VPMOVMSKB Y8, BX
	TESTL     BX, BX
	SETNE     bad+40(FP)
	VPMOVMSKB Y9, BX
	TESTL     BX, BX
	SETNE     high+41(FP)
	VZEROUPPER
	MOVQ      AX, end+32(FP)
	RET
