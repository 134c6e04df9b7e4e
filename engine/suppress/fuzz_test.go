package suppress

import (
	"bytes"
	"strings"
	"testing"

	"gannet/mailaddr"
)

// FuzzImport feeds arbitrary files to Import (untrusted input from the
// admin API): it never panics, counts every non-blank line as added,
// refused or skipped, and every address it says it added is suppressed
// afterwards, for the tenant its line named.
func FuzzImport(f *testing.F) {
	f.Add([]byte("address,tenant,reason\nbob@example.test,acme,why\n"))
	f.Add([]byte("bob@example.test\n# comment\n\n\"x,y\"@example.test,,\"a \"\"quoted\"\" reason\"\n"))
	f.Add([]byte("\ufeffBOB@EXAMPLE.TEST,acme\r\nbad\r\n\"unterminated,acme\n"))
	f.Add([]byte(strings.Repeat("a", MaxLine+1)))
	sp := openSpool(f, f.TempDir())
	f.Cleanup(func() { sp.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		l := New(sp, nil)
		if _, err := l.Load(); err != nil { // what earlier inputs left
			t.Fatal(err)
		}
		res, err := l.Import(bytes.NewReader(data), "", SourceImport)
		if err != nil {
			return // a line too long: what came before it stands
		}
		if res.Added+res.Failed > res.Lines || len(res.Errors) > MaxImportErrors {
			t.Fatalf("result %+v", res)
		}
		var n int
		l.Each(Filter{AllTenants: true}, func(e Entry) bool {
			n++
			if !l.Suppressed(e.Tenant, e.Address) || mailaddr.Fold(e.Address) != e.Address {
				t.Fatalf("listed %+v is not suppressed or not folded", e)
			}
			return true
		})
		if n != l.Len() {
			t.Fatalf("%d listed, %d held", n, l.Len())
		}
	})
}
