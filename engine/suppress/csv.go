package suppress

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The file format of import and export: one entry a line, either a bare
// address or CSV fields address,tenant,reason (tenant "" for the global
// list; export adds source,created,expires). A first line whose first
// field is "address" is a header; blank lines and lines starting with "#"
// are skipped. A line is at most MaxLine bytes.
const (
	MaxLine = 4096
	// MaxImportErrors is how many bad lines an import reports one by one.
	MaxImportErrors = 20
)

// ExportHeader is the header line an export starts with.
var ExportHeader = []string{"address", "tenant", "reason", "source", "created", "expires"}

// ImportResult says what an import did.
type ImportResult struct {
	Lines  int      `json:"lines"`  // lines read (blank and comment lines included)
	Added  int      `json:"added"`  // entries added or renewed
	Failed int      `json:"failed"` // lines refused
	Errors []string `json:"errors"` // the first MaxImportErrors refusals: "line N: why"
}

// Import reads entries from r, one line at a time (memory stays bounded
// whatever the size of r), and adds each with source. tenant, when set,
// is the tenant of every line: a line naming another is refused (a
// tenant's API key imports into its own list only); when "" each line
// names its own (empty: the global list). The entries are synced once,
// at the end. An error reading r or writing the store stops the import.
func (l *List) Import(r io.Reader, tenant, source string) (ImportResult, error) {
	res := ImportResult{Errors: []string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), MaxLine)
	bad := func(format string, a ...any) {
		res.Failed++
		if len(res.Errors) < MaxImportErrors {
			res.Errors = append(res.Errors, fmt.Sprintf("line %d: ", res.Lines)+fmt.Sprintf(format, a...))
		}
	}
	var last *Entry
	fields := make([]string, 0, 8)
	for sc.Scan() {
		res.Lines++
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f, err := splitCSV(line, fields[:0])
		if err != nil {
			bad("%v", err)
			continue
		}
		if res.Lines == 1 && strings.EqualFold(f[0], "address") {
			continue // the header
		}
		t, reason := tenant, "imported"
		if len(f) > 1 {
			switch {
			case tenant == "":
				t = f[1]
			case f[1] != "" && f[1] != tenant:
				bad("tenant %q is not allowed here", f[1])
				continue
			}
		}
		if len(f) > 2 && f[2] != "" {
			reason = f[2]
		}
		e, err := l.put(t, f[0], reason, source, false, true)
		if err != nil {
			bad("%v", err)
			continue
		}
		res.Added++
		last = &e
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d: longer than %d bytes", res.Lines+1, MaxLine)
		}
		return res, err
	}
	if last != nil { // one synced write makes every earlier one durable
		if _, err := l.put(last.Tenant, last.Address, last.Reason, last.Source, true, false); err != nil {
			return res, err
		}
	}
	return res, nil
}

// errQuote is a quoted field that does not end well.
var errQuote = errors.New(`bad quoting: a quoted field ends with '"' followed by ',' or the end of the line`)

// splitCSV splits one CSV line (RFC 4180: fields separated by commas, a
// field in double quotes may hold commas and doubled quotes) into out,
// each field trimmed of spaces.
func splitCSV(line string, out []string) ([]string, error) {
	for {
		line = strings.TrimLeft(line, " \t")
		var field string
		if strings.HasPrefix(line, `"`) {
			var b strings.Builder
			i := 1
			for {
				j := strings.IndexByte(line[i:], '"')
				if j < 0 {
					return out, errQuote
				}
				b.WriteString(line[i : i+j])
				i += j + 1
				if i < len(line) && line[i] == '"' { // a doubled quote
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			field, line = b.String(), strings.TrimLeft(line[i:], " \t")
			if line != "" && line[0] != ',' {
				return out, errQuote
			}
		} else {
			j := strings.IndexByte(line, ',')
			if j < 0 {
				j = len(line)
			}
			field, line = strings.TrimSpace(line[:j]), line[j:]
			if strings.Contains(field, `"`) {
				return out, errQuote
			}
		}
		out = append(out, field)
		if line == "" {
			return out, nil
		}
		line = line[1:] // the comma
	}
}

// Export writes the entries f chooses to w as CSV, with ExportHeader
// first, one entry at a time.
func (l *List) Export(w io.Writer, f Filter) (int, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(ExportHeader); err != nil {
		return 0, err
	}
	n := 0
	var werr error
	err := l.Each(f, func(e Entry) bool {
		exp := ""
		if !e.Expires.IsZero() {
			exp = e.Expires.UTC().Format(time.RFC3339)
		}
		if werr = cw.Write([]string{e.Address, e.Tenant, e.Reason, e.Source, e.Created.UTC().Format(time.RFC3339), exp}); werr != nil {
			return false
		}
		n++
		if n%1000 == 0 {
			cw.Flush()
			werr = cw.Error()
		}
		return werr == nil
	})
	cw.Flush()
	return n, errors.Join(err, werr, cw.Error())
}
