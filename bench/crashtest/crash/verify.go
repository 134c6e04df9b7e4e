package crash

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Report is the verdict of a run.
type Report struct {
	Rounds       int // gannet lifetimes under load
	Kills        int // SIGKILLs sent
	Acknowledged int // distinct X-Blast-Ids answered with 250
	Delivered    int // distinct X-Blast-Ids that reached the sink
	Lost         int // acknowledged, never delivered: must be 0
	Corrupted    int // delivered altered: must be 0
	Duplicates   int // deliveries beyond the first: allowed, up to DupBound
	// DupBound is what was in DATA on gannet's open outbound connections
	// at the kills, as smtpsink counted it (Stats.CutAfterReply +
	// CutInData): messages the sink accepted with a 250 gannet may not have
	// read (up to two per connection: gannet pipelines the next transaction
	// before it reads the last one's replies) or was still receiving. Only these may
	// come again; a duplicate beyond them is an outcome the spool lost.
	DupBound      int
	Unacked       int // delivered without a 250 (client saw a broken connection): allowed
	Refused452    int // disk-full scenario: MAIL FROM probes answered 452 4.3.1
	GannetCrashes int // gannet exits we did not cause, or panics: must be 0

	LostIDs    []string // the first few
	CorruptIDs []string // the first few, with why
	Notes      []string // what happened, for the log
}

// OK reports whether nothing was lost, altered or crashed.
func (r *Report) OK() bool { return r.Lost == 0 && r.Corrupted == 0 && r.GannetCrashes == 0 }

// DuplicatesBounded reports whether the duplicates stayed within DupBound
// plus slack: what was on the wire at the kills may come again, and slack
// more (the deliveries of the last millisecond or two before a kill, whose
// outcome the spool had not yet synced, on connections that went on with
// another transaction).
func (r *Report) DuplicatesBounded(slack int) bool { return r.Duplicates <= r.DupBound+slack }

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rounds %d, kills %d: acknowledged %d, delivered %d, lost %d, corrupted %d, duplicates %d",
		r.Rounds, r.Kills, r.Acknowledged, r.Delivered, r.Lost, r.Corrupted, r.Duplicates)
	if r.Kills > 0 {
		fmt.Fprintf(&b, " (bound %d: messages in DATA on open outbound connections at the kills)", r.DupBound)
	}
	fmt.Fprintf(&b, ", delivered-unacknowledged %d, gannet crashes %d", r.Unacked, r.GannetCrashes)
	if r.Refused452 > 0 {
		fmt.Fprintf(&b, ", 452 4.3.1 probes %d", r.Refused452)
	}
	if len(r.LostIDs) > 0 {
		fmt.Fprintf(&b, "\n  lost: %s", strings.Join(r.LostIDs, " "))
	}
	if len(r.CorruptIDs) > 0 {
		fmt.Fprintf(&b, "\n  corrupted: %s", strings.Join(r.CorruptIDs, "; "))
	}
	return b.String()
}

const maxListed = 20

// readAcked reads smtpblast -ids files ("<queue id>\t<X-Blast-Id>" lines).
func readAcked(files []string) (map[string]bool, error) {
	acked := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" {
				continue
			}
			_, bid, ok := strings.Cut(line, "\t")
			if !ok || bid == "" {
				return nil, fmt.Errorf("%s: bad line %q", f, line)
			}
			acked[bid] = true
		}
	}
	return acked, nil
}

// readDelivered counts the sink's ids file lines per X-Blast-Id.
func readDelivered(path string) (map[string]int, error) {
	got := map[string]int{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return got, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			got[id]++
		}
	}
	return got, sc.Err()
}

// checkDump verifies every dumped message: its body hashes to its
// X-Blast-Sum, and its Subject and Message-ID name its X-Blast-Id. It
// returns the problems per X-Blast-Id.
func checkDump(dir string) (map[string]string, int, error) {
	bad := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, n, err
		}
		n++
		id, why := checkMessage(data)
		if why != "" {
			if id == "" {
				id = e.Name()
			}
			bad[id] = why
		}
	}
	return bad, n, nil
}

// checkMessage checks one delivered message against what smtpblast sent.
func checkMessage(data []byte) (id, why string) {
	sep := bytes.Index(data, []byte("\r\n\r\n"))
	if sep < 0 {
		return "", "no end of header"
	}
	head, body := data[:sep+2], data[sep+4:]
	var sum, subject, msgID string
	for _, line := range strings.Split(string(head), "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "x-blast-id":
			id = value
		case "x-blast-sum":
			sum = value
		case "subject":
			subject = value
		case "message-id":
			msgID = value
		}
	}
	if id == "" {
		return "", "no X-Blast-Id"
	}
	if sum == "" {
		return id, "no X-Blast-Sum"
	}
	h := sha256.Sum256(body)
	if got := hex.EncodeToString(h[:]); got != sum {
		return id, fmt.Sprintf("body sha256 %s…, X-Blast-Sum %s…", got[:12], sum[:min(12, len(sum))])
	}
	if subject != "smtpblast "+id || msgID != "<"+id+"@blast.example.test>" {
		return id, fmt.Sprintf("header altered (Subject %q, Message-ID %q)", subject, msgID)
	}
	return id, ""
}

// verdict fills the counts of r from the records under dir.
func verdict(r *Report, blastIDs []string, dir string) error {
	acked, err := readAcked(blastIDs)
	if err != nil {
		return err
	}
	delivered, err := readDelivered(filepath.Join(dir, "sink.ids"))
	if err != nil {
		return err
	}
	bad, dumped, err := checkDump(filepath.Join(dir, "dump"))
	if err != nil {
		return err
	}
	r.Acknowledged = len(acked)
	r.Delivered = len(delivered)
	total := 0
	for id, n := range delivered {
		total += n
		r.Duplicates += n - 1
		if !acked[id] {
			r.Unacked++
		}
	}
	if dumped != total {
		r.Notes = append(r.Notes, fmt.Sprintf("sink ids file has %d lines but %d dumps", total, dumped))
	}
	var lost []string
	for id := range acked {
		if delivered[id] == 0 {
			lost = append(lost, id)
		}
	}
	slices.Sort(lost)
	r.Lost = len(lost)
	r.LostIDs = lost[:min(len(lost), maxListed)]
	var corrupt []string
	for id, why := range bad {
		corrupt = append(corrupt, id+": "+why)
	}
	slices.Sort(corrupt)
	r.Corrupted = len(corrupt)
	r.CorruptIDs = corrupt[:min(len(corrupt), maxListed)]
	return nil
}

// logger returns a printf to w (or a no-op).
func logger(w io.Writer) func(string, ...any) {
	if w == nil {
		return func(string, ...any) {}
	}
	return func(f string, a ...any) { fmt.Fprintf(w, "crashtest: "+f+"\n", a...) }
}
