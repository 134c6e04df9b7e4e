package outbound

import (
	"bytes"
	"fmt"
	"testing"
)

// TestBodyTraitsEveryPosition: bodyTraits (one AVX2 pass where the CPU has
// it) answers as cleanCRLF and isASCIIBytes do, for a clean body of 100
// lines with one fault put at every offset in turn — a bare LF, a bare CR,
// CR and LF swapped, an 8-bit byte — so that every offset of a 32-byte
// block, the bytes the assembly leaves to Go at both ends, and the block
// edges where the byte before or after lies in the next block are each
// tested.
func TestBodyTraitsEveryPosition(t *testing.T) {
	clean := bytes.Repeat([]byte("Lorem ipsum dolor sit amet.\r\n"), 100)
	check := func(body []byte, what string) {
		t.Helper()
		gotClean, gotASCII := bodyTraits(body)
		wantClean, wantASCII := cleanCRLF(body), isASCIIBytes(body)
		if gotClean != wantClean || gotASCII != wantASCII {
			t.Fatalf("%s: bodyTraits = %v, %v; want %v, %v", what, gotClean, gotASCII, wantClean, wantASCII)
		}
	}
	check(clean, "clean body")
	if c, a := bodyTraits(clean); !c || !a {
		t.Fatalf("clean 7-bit body judged %v, %v", c, a)
	}
	for n := range 70 { // short bodies: both code paths around 34 bytes
		check(clean[:n], "prefix")
	}
	body := make([]byte, len(clean))
	for i := range clean {
		for _, fault := range []struct {
			name string
			put  func(b []byte)
		}{
			{"bare LF", func(b []byte) { b[i] = '\n' }},
			{"bare CR", func(b []byte) { b[i] = '\r' }},
			{"8-bit", func(b []byte) { b[i] = 0xc3 }},
			{"LF CR", func(b []byte) {
				if i+1 < len(b) {
					b[i], b[i+1] = '\n', '\r'
				}
			}},
		} {
			copy(body, clean)
			fault.put(body)
			check(body, fmt.Sprintf("%s at %d", fault.name, i))
		}
	}
}

// FuzzBodyTraits: whatever the bytes, bodyTraits agrees with cleanCRLF and
// isASCIIBytes.
func FuzzBodyTraits(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody line one is here and it is long\r\n"))
	f.Add([]byte("\na line with a bare LF in front of it, long enough\r\n"))
	f.Add([]byte("a line that ends with a bare CR, long enough to scan\r"))
	f.Add([]byte("8-bit \xc3\xa9 in the middle of a line long enough to scan\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		gotClean, gotASCII := bodyTraits(body)
		if wantClean, wantASCII := cleanCRLF(body), isASCIIBytes(body); gotClean != wantClean || gotASCII != wantASCII {
			t.Fatalf("bodyTraits(%q) = %v, %v; want %v, %v", body, gotClean, gotASCII, wantClean, wantASCII)
		}
	})
}
