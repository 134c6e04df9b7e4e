//go:build amd64 && !purego

#include "textflag.h"

// bytes: 32 times each of HTAB, SP, LF and CR. (Loading them is much
// cheaper than VPBROADCASTB from a general register on some virtual CPUs.)
DATA bytes<>+0(SB)/8, $0x0909090909090909
DATA bytes<>+8(SB)/8, $0x0909090909090909
DATA bytes<>+16(SB)/8, $0x0909090909090909
DATA bytes<>+24(SB)/8, $0x0909090909090909
DATA bytes<>+32(SB)/8, $0x2020202020202020
DATA bytes<>+40(SB)/8, $0x2020202020202020
DATA bytes<>+48(SB)/8, $0x2020202020202020
DATA bytes<>+56(SB)/8, $0x2020202020202020
DATA bytes<>+64(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA bytes<>+72(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA bytes<>+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA bytes<>+88(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA bytes<>+96(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA bytes<>+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA bytes<>+112(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA bytes<>+120(SB)/8, $0x0d0d0d0d0d0d0d0d
GLOBL bytes<>(SB), RODATA|NOPTR, $128

// func scanAVX2(body []byte, i int) int
//
// From i (1 <= i, i+33 <= len(body)), 32 bytes at a time while a whole
// block and the bytes on either side of it are in body: returns the offset
// of the first byte that needs a change in the relaxed body (HTAB; SP
// followed by a byte <= 0x20; LF after a byte other than CR), or the
// offset of the first block it could not test.
TEXT ·scanAVX2(SB), NOSPLIT, $0-40
	MOVQ body_base+0(FP), SI
	MOVQ body_len+8(FP), DX
	MOVQ i+24(FP), AX

	VMOVDQU bytes<>+0(SB), Y10  // HTAB
	VMOVDQU bytes<>+32(SB), Y11 // SP
	VMOVDQU bytes<>+64(SB), Y12 // LF
	VMOVDQU bytes<>+96(SB), Y13 // CR

	LEAQ 33(AX), CX
	CMPQ CX, DX
	JA   done

loop:
	VMOVDQU (SI)(AX*1), Y0   // the block
	VMOVDQU 1(SI)(AX*1), Y1  // the byte after each
	VMOVDQU -1(SI)(AX*1), Y2 // the byte before each
	VPCMPEQB Y0, Y10, Y3     // HTAB
	VPCMPEQB Y0, Y11, Y4     // SP
	VPMINUB  Y1, Y11, Y5
	VPCMPEQB Y1, Y5, Y5      // next <= 0x20
	VPAND    Y4, Y5, Y4      // SP before a byte <= 0x20
	VPOR     Y3, Y4, Y3
	VPCMPEQB Y0, Y12, Y6     // LF
	VPCMPEQB Y2, Y13, Y7     // CR before
	VPANDN   Y6, Y7, Y6      // LF without CR before
	VPOR     Y3, Y6, Y3
	VPMOVMSKB Y3, BX
	TESTL BX, BX
	JNZ   found
	ADDQ $32, AX
	LEAQ 33(AX), CX
	CMPQ CX, DX
	JBE  loop

done:
	VZEROUPPER
	MOVQ AX, ret+32(FP)
	RET

found:
	BSFL BX, BX
	ADDQ BX, AX
	VZEROUPPER
	MOVQ AX, ret+32(FP)
	RET
