package logrec

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// jsonRecord mirrors the layout AppendJSON writes.
type jsonRecord struct {
	Type        Type   `json:"type"`
	ID          string `json:"id"`
	Sender      string `json:"sender"`
	Recipient   string `json:"recipient"`
	Queue       string `json:"queue"`
	Site        string `json:"site"`
	Size        int64  `json:"size"`
	NumAttempts int    `json:"num_attempts"`
	Response    struct {
		Code         int `json:"code"`
		EnhancedCode *struct {
			Class   int `json:"class"`
			Subject int `json:"subject"`
			Detail  int `json:"detail"`
		} `json:"enhanced_code"`
		Content string `json:"content"`
	} `json:"response"`
	BounceClassification string `json:"bounce_classification"`
	PeerAddress          *struct {
		Name string `json:"name"`
		Addr string `json:"addr"`
	} `json:"peer_address"`
	TLSProtocolVersion string `json:"tls_protocol_version"`
	TLSCipher          string `json:"tls_cipher"`
	Tenant             string `json:"tenant"`
	Campaign           string `json:"campaign"`
	Timestamp          int64  `json:"timestamp"`
	Created            int64  `json:"created"`
	EgressSource       string `json:"egress_source"`
	Listener           string `json:"listener"`
	XferFrom           string `json:"xfer_from"`
	TLSPolicy          string `json:"tls_policy"`
	TLSResultType      string `json:"tls_result_type"`
	Command            string `json:"command"`
	Reason             string `json:"reason"`
	UUID               string `json:"uuid"`
}

// ParseRecord decodes one line written by AppendJSON (the trailing newline
// is optional). Times come back in UTC with whole seconds, as written.
func ParseRecord(line []byte) (Record, error) {
	var j jsonRecord
	if err := json.Unmarshal(line, &j); err != nil {
		return Record{}, fmt.Errorf("logrec: %w", err)
	}
	if j.Type == "" {
		return Record{}, errors.New("logrec: record without a type")
	}
	r := Record{
		Type: j.Type, ID: j.ID, Sender: j.Sender, Recipient: j.Recipient, Queue: j.Queue, Site: j.Site,
		Size: j.Size, NumAttempts: j.NumAttempts,
		Response:             Response{Code: j.Response.Code, Content: j.Response.Content},
		BounceClassification: j.BounceClassification,
		TLSProtocolVersion:   j.TLSProtocolVersion, TLSCipher: j.TLSCipher,
		Tenant: j.Tenant, Campaign: j.Campaign,
		Timestamp: unixOrZero(j.Timestamp), Created: unixOrZero(j.Created),
		EgressSource: j.EgressSource, Listener: j.Listener, XferFrom: j.XferFrom, TLSPolicy: j.TLSPolicy,
		TLSResultType: j.TLSResultType, Command: j.Command, Reason: j.Reason, UUID: j.UUID,
	}
	if e := j.Response.EnhancedCode; e != nil {
		r.Response.EnhancedCode = strconv.Itoa(e.Class) + "." + strconv.Itoa(e.Subject) + "." + strconv.Itoa(e.Detail)
	}
	if p := j.PeerAddress; p != nil {
		r.PeerAddress = PeerAddress{Name: p.Name, Addr: p.Addr}
	}
	return r, nil
}

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// ReadFile calls fn with each record of one log file, plain (.jsonl) or
// compressed (.jsonl.zst), in the order written. A last line without its
// newline is a record still being written and is left out; any other line
// that does not parse is an error. An error from fn stops the reading and
// is returned.
func ReadFile(path string, fn func(*Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 64<<10)
	if strings.HasSuffix(path, ".zst") {
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return nil // a partial last line is not a record yet
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := ParseRecord(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if err := fn(&rec); err != nil {
			return err
		}
	}
}

// LogFiles returns the log files under dir in the order they were started:
// by the time in the name, then by the number added to names started in
// the same second. When a file exists both plain and compressed (for a
// moment during compression, or after a crash), only the compressed one is
// listed; temporary files are never listed.
func LogFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type file struct {
		stamp string
		seq   int
		name  string
	}
	compressed := map[string]bool{}
	for _, e := range ents {
		if base, ok := strings.CutSuffix(e.Name(), compressedSuffix); ok {
			compressed[base] = true
		}
	}
	var files []file
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, "gannet-") {
			continue
		}
		base, ok := strings.CutSuffix(name, compressedSuffix)
		if !ok {
			if base, ok = strings.CutSuffix(name, plainSuffix); !ok || compressed[base] {
				continue
			}
		}
		// gannet-YYYYMMDD-HHMMSS[-N]
		stamp, seq := strings.TrimPrefix(base, "gannet-"), 0
		if len(stamp) > 15 && stamp[15] == '-' {
			seq, _ = strconv.Atoi(stamp[16:])
			stamp = stamp[:15]
		}
		files = append(files, file{stamp, seq, filepath.Join(dir, name)})
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].stamp != files[j].stamp {
			return files[i].stamp < files[j].stamp
		}
		return files[i].seq < files[j].seq
	})
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.name
	}
	return out, nil
}

// ReadDir calls fn with every record under dir, file by file in LogFiles
// order. A file that disappears while being listed (compressed meanwhile)
// is read under its compressed name.
func ReadDir(dir string, fn func(*Record) error) error {
	files, err := LogFiles(dir)
	if err != nil {
		return err
	}
	for _, path := range files {
		err := ReadFile(path, fn)
		if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(path, plainSuffix) {
			err = ReadFile(path+".zst", fn)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
