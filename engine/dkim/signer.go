package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gannet/mailaddr"
)

// DefaultHeaders is the signed header list used when a KeyConfig has none:
// the contract's default [[dkim]] headers.
func DefaultHeaders() []string {
	return []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"}
}

// overSigned reports whether a header name is listed once more in "h=" than
// the message has instances of it (RFC 6376 §8.15), so that adding one more
// in transit breaks the signature.
func overSigned(name string) bool {
	return strings.EqualFold(name, "From") || strings.EqualFold(name, "To") || strings.EqualFold(name, "Subject")
}

// KeyConfig is one signing key: a [[dkim]] config entry. It has the fields of
// config.DKIM in the same order, so dkim.KeyConfig(cfg.DKIM[i]) converts one.
type KeyConfig struct {
	Domain   string   // "d=": the signing domain
	Selector string   // "s=": the key is published at <selector>._domainkey.<domain>
	KeyFile  string   // PEM or base64-seed private key, see LoadKey
	Headers  []string // header names to sign; nil: DefaultHeaders
}

// Option configures New.
type Option func(*options)

type options struct {
	expiry     time.Duration
	minRSABits int
	now        func() time.Time // the signing time ("t="): time.Now
}

// WithExpiry adds "x=" (signature expiration, RFC 6376 §3.5) at signing time
// (the system clock) plus d. The default is no "x=": a message that sits in a retry queue for
// days must still verify when it is finally delivered.
func WithExpiry(d time.Duration) Option { return func(o *options) { o.expiry = d } }

// withMinRSABits lowers the RSA size limit; tests use it for the 1024-bit
// RFC 8463 key.
func withMinRSABits(bits int) Option { return func(o *options) { o.minRSABits = bits } }

// withClock sets the clock "t=" and "x=" are read from; tests use it to
// sign at the time a reference signer chose.
func withClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// signingKey is one loaded key with everything about its signature that does
// not depend on the message.
type signingKey struct {
	cfg   KeyConfig
	key   crypto.Signer // *rsa.PrivateKey (rsa-sha256) or ed25519.PrivateKey (ed25519-sha256)
	names []string      // signed header names, deduplicated, From first
}

// keySet is an immutable snapshot of the loaded keys.
type keySet struct {
	keys     []*signingKey
	byDomain map[string][]*signingKey
}

// Signers holds the DKIM keys of a Gannet instance and signs messages with
// them. It is safe for concurrent use; Sign takes no lock.
type Signers struct {
	opts options
	set  atomic.Pointer[keySet]
	mu   sync.Mutex // serialises Reload and Replace; Sign never takes it
}

// New loads every key. An error names the first entry or file that is wrong;
// an empty list is valid (nothing is signed).
func New(keys []KeyConfig, opts ...Option) (*Signers, error) {
	s := &Signers{opts: options{minRSABits: MinRSABits, now: time.Now}}
	for _, o := range opts {
		o(&s.opts)
	}
	set, err := s.load(keys, nil)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	return s, nil
}

// Replace swaps in a new key list (a reloaded config). On any error the
// current keys stay in use.
func (s *Signers) Replace(keys []KeyConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, err := s.load(keys, nil)
	if err != nil {
		return err
	}
	s.set.Store(set)
	return nil
}

// Reload re-reads every key file (on SIGHUP, after a key rotation). A file
// that no longer loads keeps its previous key, and its error is returned;
// the other keys are updated.
func (s *Signers) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.set.Load()
	cfgs := make([]KeyConfig, len(old.keys))
	for i, k := range old.keys {
		cfgs[i] = k.cfg
	}
	set, err := s.load(cfgs, old)
	if set != nil {
		s.set.Store(set)
	}
	return err
}

// load builds a key set. With fallback set, a key that fails to load is
// taken from fallback (same position) and the errors are joined; without
// it, the first error is returned.
func (s *Signers) load(cfgs []KeyConfig, fallback *keySet) (*keySet, error) {
	set := &keySet{byDomain: make(map[string][]*signingKey)}
	var errs []error
	seen := make(map[string]bool)
	for i, c := range cfgs {
		k, err := s.newKey(c)
		if err != nil {
			if fallback == nil {
				return nil, err
			}
			errs = append(errs, err)
			k = fallback.keys[i]
		}
		id := k.cfg.Selector + "._domainkey." + k.cfg.Domain
		if seen[id] {
			return nil, fmt.Errorf("dkim: two [[dkim]] entries for selector %q of domain %q", k.cfg.Selector, k.cfg.Domain)
		}
		seen[id] = true
		set.keys = append(set.keys, k)
		set.byDomain[k.cfg.Domain] = append(set.byDomain[k.cfg.Domain], k)
	}
	return set, errors.Join(errs...)
}

// newKey checks one KeyConfig and loads its key.
func (s *Signers) newKey(c KeyConfig) (*signingKey, error) {
	c.Domain = normDomain(c.Domain)
	if !validDNSName(c.Domain) {
		return nil, fmt.Errorf("dkim: [[dkim]] domain %q is not a domain name", c.Domain)
	}
	if !validDNSName(c.Selector) {
		return nil, fmt.Errorf("dkim: [[dkim]] selector %q for %s is not a DNS label sequence", c.Selector, c.Domain)
	}
	if c.KeyFile == "" {
		return nil, fmt.Errorf("dkim: [[dkim]] %s (selector %s): key_file is empty", c.Domain, c.Selector)
	}
	key, err := loadKey(c.KeyFile, s.opts.minRSABits)
	if err != nil {
		return nil, fmt.Errorf("%w (domain %s, selector %s)", err, c.Domain, c.Selector)
	}
	k := &signingKey{cfg: c, key: key}
	headers := c.Headers
	if len(headers) == 0 {
		headers = DefaultHeaders()
	}
	// From must be signed (RFC 6376 §5.4); put it first.
	k.names = append(k.names, "From")
	for _, h := range headers {
		h = strings.TrimSpace(h)
		if h == "" || strings.ContainsAny(h, ": \t\r\n;") {
			return nil, fmt.Errorf("dkim: [[dkim]] %s: bad header name %q", c.Domain, h)
		}
		dup := false
		for _, n := range k.names {
			dup = dup || strings.EqualFold(n, h)
		}
		if !dup {
			k.names = append(k.names, h)
		}
	}
	return k, nil
}

// Has reports whether a key is configured for exactly domain.
func (s *Signers) Has(domain string) bool {
	return len(s.set.Load().byDomain[normDomain(domain)]) > 0
}

// Sign returns the DKIM-Signature header fields for msg (header and body,
// CRLF line ends), one per key configured for each of domains, to be
// prepended to the message in the order returned. Domains without a key are
// skipped; nil means nothing to sign. msg is not modified or kept.
//
// Every signature uses relaxed/relaxed canonicalization and the header list
// that headerKeys computes for this message. The body is read once, however
// many keys sign it: all of them hash it the same way (relaxed, SHA-256).
func (s *Signers) Sign(msg []byte, domains []string) ([]byte, error) {
	return s.SignMessage(NewMessage(msg), domains)
}

// SignMessage is Sign for a message that several Signers sign (the
// configured keys and a policy script's): its body is hashed once for all
// of them.
func (s *Signers) SignMessage(m *Message, domains []string) ([]byte, error) {
	set := s.set.Load()
	var out []byte
	for i, d := range domains {
		d = normDomain(d)
		if slicesContainsNorm(domains[:i], d) {
			continue
		}
		for _, k := range set.byDomain[d] {
			var err error
			if out, err = s.appendSignature(out, m, k); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Message is a message to sign with what its signatures share, its header
// fields and its body hash, computed when the first signature needs them.
// It is for one goroutine.
type Message struct {
	msg    []byte
	fields []field
	bh     string // base64 of the relaxed body's SHA-256; "" until parsed
	buf    [32]field
}

// NewMessage returns msg (header and body, CRLF line ends) to sign with
// SignMessage. msg is not modified and must not be until the last
// signature is made.
func NewMessage(msg []byte) *Message { return &Message{msg: msg} }

// parse splits the header and hashes the body, the first time.
func (m *Message) parse() {
	if m.bh != "" {
		return
	}
	var body []byte
	m.fields, body = splitHeader(m.msg, m.buf[:0])
	sum := bodyHash(body)
	m.bh = base64.StdEncoding.EncodeToString(sum[:])
}

// headerKeys is the "h=" list for one message (RFC 6376 §5.4): each
// configured name as many times as the message has that field, plus one
// more for the over-signed names From, To and Subject (§8.15), so that a
// field of those names added in transit breaks the signature. Names the
// message lacks are left out unless over-signed.
func headerKeys(names []string, fields []field) []string {
	keys := make([]string, 0, len(names)+6)
	for _, name := range names {
		n := countFields(fields, name)
		if overSigned(name) {
			n++
		}
		for range n {
			keys = append(keys, name)
		}
	}
	return keys
}

// appendSignature appends one DKIM-Signature field for k to out (RFC 6376
// §3.5, §3.7, §5): the tags, with "b=" empty, are formatted; the listed
// header fields and then that field are hashed in relaxed form; the hash is
// signed (rsa-sha256: RSASSA-PKCS1-v1_5 with SHA-256, RFC 6376 §3.3.1;
// ed25519-sha256: Ed25519 over the SHA-256 hash, RFC 8463 §3); and the
// field is appended with the signature as "b=".
func (s *Signers) appendSignature(out []byte, m *Message, k *signingKey) ([]byte, error) {
	m.parse()
	now := s.opts.now()
	keys := headerKeys(k.names, m.fields)
	tags := []tag{
		{"a", algorithm(k.key)},
		{"bh", m.bh},
		{"c", "relaxed/relaxed"},
		{"d", k.cfg.Domain},
		{"h", strings.Join(keys, ":")},
		{"s", k.cfg.Selector},
		{"t", strconv.FormatInt(now.Unix(), 10)},
		{"v", "1"},
	}
	if s.opts.expiry > 0 {
		tags = append(tags, tag{"x", strconv.FormatInt(now.Add(s.opts.expiry).Unix(), 10)})
	}
	field := appendSigTags(make([]byte, 0, 1024), tags)
	unsigned := appendFoldedB(field, "")

	// The header hash input (§3.7): each listed field, picked from the
	// bottom up (§5.4.2) and skipped when the message has no more of it
	// (over-signing), then this field with "b=" empty and no final CRLF.
	input := make([]byte, 0, 2048)
	for i, name := range keys {
		skip := 0
		for _, prev := range keys[:i] {
			if strings.EqualFold(prev, name) {
				skip++
			}
		}
		if f := pickField(m.fields, name, skip); f != nil {
			input = appendRelaxedField(input, *f)
		}
	}
	input = appendRelaxedHeader(input, []byte(sigFieldName), unsigned[len(sigFieldName)+1:])
	digest := sha256.Sum256(input[:len(input)-len(crlf)])

	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := k.key.(ed25519.PrivateKey); ok {
		opts = crypto.Hash(0) // RFC 8463: the digest is the message Ed25519 signs
	}
	sig, err := k.key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		return nil, fmt.Errorf("dkim: signing for %s: %w", k.cfg.Domain, err)
	}
	return appendFoldedB(append(out, field...), base64.StdEncoding.EncodeToString(sig)), nil
}

// sigFieldName is the name of the field Sign makes (RFC 6376 §3.5).
const sigFieldName = "DKIM-Signature"

// tag is one tag=value pair of a DKIM-Signature (RFC 6376 §3.2).
type tag struct{ name, value string }

// appendSigTags appends the DKIM-Signature field name and its tags except
// "b=", folded as go-msgauth folds them (so that fields look as they did
// before Gannet signed by itself): " name=value;" after one another, a new
// line (CRLF SP) before a tag that would take the line past 75 characters,
// and a CRLF after the last tag.
func appendSigTags(dst []byte, tags []tag) []byte {
	dst = append(dst, sigFieldName+":"...)
	line := 0
	for _, t := range tags {
		if 3+line+len(t.name)+len(t.value) > 75 {
			dst = append(dst, crlf...)
			line = 0
		}
		dst = append(append(append(append(append(dst, ' '), t.name...), '='), t.value...), ';')
		line += 3 + len(t.name) + len(t.value)
	}
	return append(dst, crlf...)
}

// appendFoldedB appends " b=" and the signature (empty while hashing, §3.7)
// on lines of 75 characters, each continuation line starting with SP, and
// the final CRLF.
func appendFoldedB(dst []byte, b string) []byte {
	const width = 75
	s := " b=" + b
	for len(s) > width {
		dst = append(append(dst, s[:width]...), "\r\n "...)
		s = s[width:]
	}
	return append(append(dst, s...), crlf...)
}

// normDomain puts a domain into canonical form (mailaddr.CanonicalDomain),
// so that a key for "例子.test" signs mail From "xn--fsqu00a.test".
func normDomain(d string) string { return mailaddr.CanonicalDomain(strings.TrimSpace(d)) }

// slicesContainsNorm reports whether list holds d once normalized.
func slicesContainsNorm(list []string, d string) bool {
	for _, x := range list {
		if normDomain(x) == d {
			return true
		}
	}
	return false
}

// validDNSName checks a domain or selector: dot-separated labels of letters,
// digits, '-' and '_', 1-63 bytes each, 253 in all (A-labels for IDNs).
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := range len(label) {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
