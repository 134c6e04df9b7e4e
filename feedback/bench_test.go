package feedback

import (
	"os"
	"path/filepath"
	"testing"
)

func benchSample(b *testing.B, name string) []byte {
	msg, err := os.ReadFile(filepath.Join(testdataDir(b, filepath.Join("bounces", "sisimai", "maildir-bsd")), name))
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// BenchmarkParseDSN: a Postfix DSN with its returned message (3 KB).
func BenchmarkParseDSN(b *testing.B) {
	msg := benchSample(b, "lhost-amazonses-05.eml")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseARF: Yahoo's ARF report (arf-14.eml).
func BenchmarkParseARF(b *testing.B) {
	msg := benchSample(b, "arf-14.eml")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal: one token, as prepare makes per message and delivery per
// transaction.
func BenchmarkSeal(b *testing.B) {
	k := NewKey("0123456789abcdef0123")
	r := Ref{ID: "0mxdm8pai0000oy7w6ih", Tenant: "acme", Campaign: "spring-sale", Recipient: "someone@d1.test"}
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Seal(r)
	}
}
