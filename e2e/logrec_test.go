package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// logRecord is one JSON log record of gannet, with KumoMTA's field names
// (contract.md, "Log records"). Fields whose shape KumoMTA and a simpler
// writer may disagree on are kept raw and read through methods.
type logRecord struct {
	Type                 string          `json:"type"`
	ID                   string          `json:"id"`
	Sender               string          `json:"sender"`
	RecipientRaw         json.RawMessage `json:"recipient"`
	Queue                string          `json:"queue"`
	Site                 string          `json:"site"`
	Size                 int64           `json:"size"`
	NumAttempts          int             `json:"num_attempts"`
	Response             logResponse     `json:"response"`
	BounceClassification string          `json:"bounce_classification"`
	PeerAddress          json.RawMessage `json:"peer_address"`
	TLSProtocolVersion   string          `json:"tls_protocol_version"`
	TLSCipher            string          `json:"tls_cipher"`
	Tenant               string          `json:"tenant"`
	Campaign             string          `json:"campaign"`
	Timestamp            json.RawMessage `json:"timestamp"`
	Reason               string          `json:"reason"` // BackoffStart, BackoffEnd
	UUID                 string          `json:"uuid"`

	File string `json:"-"` // where the record was read
	Line int    `json:"-"`
	Raw  string `json:"-"`
}

// Unix returns the record's timestamp (Unix seconds).
func (r logRecord) Unix(t testing.TB) int64 {
	t.Helper()
	n, err := strconv.ParseInt(string(r.Timestamp), 10, 64)
	if err != nil {
		t.Fatalf("record %s: timestamp %s: %v", r.Raw, r.Timestamp, err)
	}
	return n
}

type logResponse struct {
	Code            int             `json:"code"`
	EnhancedCodeRaw json.RawMessage `json:"enhanced_code"`
	Content         string          `json:"content"`
}

// Recipients returns the record's recipients: KumoMTA writes one string, a
// batching writer may write a list.
func (r logRecord) Recipients() []string {
	var one string
	if json.Unmarshal(r.RecipientRaw, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var many []string
	json.Unmarshal(r.RecipientRaw, &many)
	return many
}

// HasRecipient reports whether addr is one of the record's recipients
// (domain part compared case-insensitively).
func (r logRecord) HasRecipient(addr string) bool {
	for _, a := range r.Recipients() {
		if sameAddr(a, addr) {
			return true
		}
	}
	return false
}

// EnhancedCode returns the enhanced status code as "5.1.1", whether it was
// written as that string or as KumoMTA's {"class":5,"subject":1,"detail":1}.
func (resp logResponse) EnhancedCode() string {
	var s string
	if json.Unmarshal(resp.EnhancedCodeRaw, &s) == nil {
		return s
	}
	var o struct{ Class, Subject, Detail *int }
	if json.Unmarshal(resp.EnhancedCodeRaw, &o) == nil && o.Class != nil && o.Subject != nil && o.Detail != nil {
		return fmt.Sprintf("%d.%d.%d", *o.Class, *o.Subject, *o.Detail)
	}
	return ""
}

func (r logRecord) String() string { return r.File + ":" + fmt.Sprint(r.Line) + ": " + r.Raw }

// sameAddr compares mail addresses, the domain case-insensitively.
func sameAddr(a, b string) bool {
	a, b = strings.Trim(a, "<>"), strings.Trim(b, "<>")
	la, da, _ := strings.Cut(a, "@")
	lb, db, _ := strings.Cut(b, "@")
	return la == lb && strings.EqualFold(da, db)
}

// readLogRecords reads every JSON record in every file under dir, whatever the
// files are called; .gz and .zst files are decompressed. Lines that are not a
// JSON object (such as a line still being written) are skipped.
func readLogRecords(dir string) ([]logRecord, error) {
	var recs []logRecord
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := readMaybeCompressed(path)
		if err != nil {
			return nil // a file being rotated or a compressed file not yet complete
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		n := 0
		for sc.Scan() {
			n++
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || line[0] != '{' {
				continue
			}
			var r logRecord
			if json.Unmarshal(line, &r) != nil {
				continue
			}
			r.File, r.Line, r.Raw = filepath.Base(path), n, string(line)
			recs = append(recs, r)
		}
		return nil
	})
	return recs, err
}

func readMaybeCompressed(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".zstd"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	}
	return io.ReadAll(f)
}

// recordFilter selects log records.
type recordFilter struct {
	Type      string // "" any
	ID        string // "" any
	Recipient string // "" any
}

func (f recordFilter) match(r logRecord) bool {
	return (f.Type == "" || r.Type == f.Type) &&
		(f.ID == "" || r.ID == f.ID) &&
		(f.Recipient == "" || r.HasRecipient(f.Recipient))
}

// selectRecords returns the records that match f.
func selectRecords(recs []logRecord, f recordFilter) []logRecord {
	var out []logRecord
	for _, r := range recs {
		if f.match(r) {
			out = append(out, r)
		}
	}
	return out
}

// summarize lists records briefly, for failure messages.
func summarize(recs []logRecord) string {
	if len(recs) == 0 {
		return "(no log records)"
	}
	var b strings.Builder
	for i, r := range recs {
		if i == 30 {
			fmt.Fprintf(&b, "… and %d more\n", len(recs)-i)
			break
		}
		fmt.Fprintf(&b, "%s %s %v %d %s\n", r.Type, r.ID, r.Recipients(), r.Response.Code, r.Response.Content)
	}
	return b.String()
}
