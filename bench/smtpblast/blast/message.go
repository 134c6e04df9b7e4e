package blast

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// words feed the generated body text.
var words = [...]string{
	"gannet", "relay", "queue", "message", "delivery", "throughput", "latency",
	"the", "a", "of", "to", "and", "in", "for", "with", "on", "is", "was",
	"spool", "segment", "fsync", "recipient", "domain", "envelope", "header",
	"pipelining", "transaction", "retry", "backoff", "connection", "sender",
}

// bodyText returns about n bytes of CRLF-terminated text lines of at most 78
// characters. Every seventh line starts with "." and one line is a lone "."
// so that dot-stuffing is exercised. It is deterministic for a given n.
func bodyText(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	out := make([]byte, 0, n+80)
	for line := 0; len(out) < n; line++ {
		if line == 3 {
			out = append(out, ".\r\n"...)
			continue
		}
		start := len(out)
		if line%7 == 5 {
			out = append(out, ".dot"...)
		}
		limit := 20 + rng.IntN(59) // 20..78 characters
		for {
			w := words[rng.IntN(len(words))]
			if len(out) > start && (len(out)-start+1+len(w) > limit || len(out)+1+len(w)+2 > n) {
				break
			}
			if len(out) > start {
				out = append(out, ' ')
			}
			out = append(out, w...)
		}
		out = append(out, '\r', '\n')
	}
	return out
}

// dotStuff returns p with a "." added before every line that starts with "."
// (RFC 5321 §4.5.2). p is CRLF-terminated text.
func dotStuff(p []byte) []byte {
	out := make([]byte, 0, len(p)+len(p)/40)
	atStart := true
	for _, b := range p {
		if atStart && b == '.' {
			out = append(out, '.')
		}
		out = append(out, b)
		atStart = b == '\n'
	}
	return out
}

// generator builds messages: a header block per message and a shared body
// per size.
type generator struct {
	cfg     *Config
	bodies  []genBody // index matches cfg.Sizes
	sizeSum int
	domSum  int
	domCum  []int // running sums of the domain weights, for a binary search
}

type genBody struct {
	plain   []byte // CRLF lines
	stuffed []byte // dot-stuffed, as sent after DATA
	sum     string // hex SHA-256 of plain: the X-Blast-Sum header
}

// headerEstimate is the typical header block size, subtracted from the
// requested size so that the whole message is about that size.
const headerEstimate = 408

func newGenerator(cfg *Config) *generator {
	g := &generator{cfg: cfg}
	for _, s := range cfg.Sizes {
		plain := bodyText(max(s.Value-headerEstimate, 2))
		sum := sha256.Sum256(plain)
		g.bodies = append(g.bodies, genBody{plain: plain, stuffed: dotStuff(plain), sum: hex.EncodeToString(sum[:])})
		g.sizeSum += s.Weight
	}
	for _, d := range cfg.Domains {
		g.domSum += d.Weight
		g.domCum = append(g.domCum, g.domSum)
	}
	return g
}

// message is one generated message.
type message struct {
	seq     uint64
	blastID string
	rcpts   []string
	header  []byte // header block including the empty line
	body    *genBody
}

// next fills m for sequence number seq, reusing its buffers.
func (g *generator) next(m *message, seq uint64, rng *rand.Rand, now time.Time) {
	m.seq = seq
	m.blastID = g.cfg.RunID + "-" + strconv.FormatUint(seq, 10)
	pick := rng.IntN(g.sizeSum)
	for i, s := range g.cfg.Sizes {
		if pick < s.Weight {
			m.body = &g.bodies[i]
			break
		}
		pick -= s.Weight
	}
	m.rcpts = m.rcpts[:0]
	for i := range g.cfg.Rcpts {
		// The first domain whose running sum passes the pick: a list of
		// 10,000 domains costs a binary search, not a scan.
		pick := rng.IntN(g.domSum)
		dom := g.cfg.Domains[sort.SearchInts(g.domCum, pick+1)].Value
		n := (seq-1)*uint64(g.cfg.Rcpts) + uint64(i) + 1
		m.rcpts = append(m.rcpts, "user"+strconv.FormatUint(n, 10)+"@"+dom)
	}
	h := m.header[:0]
	h = append(h, "From: smtpblast <"...)
	h = append(h, g.cfg.From...)
	h = append(h, ">\r\nTo: <"...)
	h = append(h, m.rcpts[0]...)
	h = append(h, ">\r\nSubject: smtpblast "...)
	h = append(h, m.blastID...)
	h = append(h, "\r\nDate: "...)
	h = now.AppendFormat(h, time.RFC1123Z)
	h = append(h, "\r\nMessage-ID: <"...)
	h = append(h, m.blastID...)
	h = append(h, "@blast.example.test>\r\nX-Blast-Id: "...)
	h = append(h, m.blastID...)
	// X-Blast-Sum lets a receiver (or a crash test reading its dumps)
	// check that the body arrived unaltered.
	h = append(h, "\r\nX-Blast-Sum: "...)
	h = append(h, m.body.sum...)
	for _, x := range g.cfg.Headers {
		h = append(h, "\r\n"...)
		h = append(h, x...)
	}
	h = append(h, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"...)
	m.header = h
}
