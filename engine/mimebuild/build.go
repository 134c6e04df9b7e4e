package mimebuild

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"strings"
	"time"
)

// Message is what Build turns into an RFC 5322 message. Empty fields are
// left out, except From, which is required (RFC 5322 §3.6).
type Message struct {
	From    Address
	ReplyTo []Address
	To, Cc  []Address // Bcc recipients never appear: they are envelope-only
	Subject string
	// Date is the origination date (RFC 5322 §3.6.1); zero leaves it out.
	Date time.Time
	// MessageID is "id@host" without angle brackets (RFC 5322 §3.6.4);
	// empty leaves it out.
	MessageID string
	// Headers are extra fields, written in order after the builder's own.
	// Names must be valid and not reserved (IsReservedHeader); values must
	// not contain CR or LF; non-ASCII values become encoded words. Leading
	// and trailing white space of values is dropped.
	Headers []Header
	// Text and HTML are the bodies; "" means none. Line endings may be LF,
	// CR or CRLF: the message carries CRLF.
	Text, HTML  string
	Attachments []Attachment
}

// Header is one custom header field.
type Header struct {
	Name, Value string
}

// Attachment is one file. With a ContentID it is an inline part of a
// multipart/related body (RFC 2387), referenced as "cid:ContentID" from the
// HTML; otherwise a Content-Disposition: attachment part (RFC 2183).
type Attachment struct {
	Filename    string // may be non-ASCII (RFC 2231 encoded); at most 255 bytes
	ContentType string // "type/subtype" with optional parameters; "" = application/octet-stream
	ContentID   string // without angle brackets; "" = a regular attachment
	Data        []byte
}

// Errors about the message as a whole.
var (
	ErrNoFrom         = errors.New("message has no From address")
	ErrBadContentType = errors.New("invalid attachment content type")
	ErrBadFilename    = errors.New("invalid attachment file name")
	ErrBadMessageID   = errors.New("invalid Message-ID")
	ErrBoundary       = errors.New("no multipart boundary free of the content")
	// ErrTooLarge is returned by BuildLimited when the message would be
	// larger than its limit.
	ErrTooLarge = errors.New("message larger than the size limit")
)

// Build returns the message as CRLF-terminated bytes. rnd supplies the
// randomness of multipart boundaries; nil means crypto/rand.
func Build(m *Message, rnd io.Reader) ([]byte, error) {
	return BuildLimited(m, rnd, 0)
}

// BuildLimited is Build for a message of at most limit bytes (0: no limit).
// A larger one is ErrTooLarge, found before it is built: the size of each
// part is known (base64) or bounded by its text before it is encoded, and
// quoted-printable encoding stops at the limit, so the memory a refused
// message takes stays a small multiple of limit, whatever the parts expand
// to.
func BuildLimited(m *Message, rnd io.Reader, limit int) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := newBudget(limit)
	// A subject and custom values longer than the limit together refuse
	// the message before they are folded and encoded (encoded words grow
	// them by up to three times).
	n := len(m.Subject)
	for _, h := range m.Headers {
		n += len(h.Name) + len(h.Value)
	}
	if n > b.room() {
		return nil, ErrTooLarge
	}
	hdr, err := buildHeader(m)
	if err != nil {
		return nil, err
	}
	const mimeVersion = "MIME-Version: 1.0\r\n"
	if err := b.take(len(hdr) + len(mimeVersion)); err != nil {
		return nil, err
	}
	root, err := buildBody(m, b)
	if err != nil {
		return nil, err
	}
	body, err := root.render(rnd)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(hdr)+len(body)+32)
	out = append(out, hdr...)
	out = append(out, mimeVersion...)
	out = append(out, body...)
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	if limit > 0 && len(out) > limit {
		return nil, ErrTooLarge // the multipart delimiters were the last straw
	}
	return out, nil
}

// budget counts the bytes of a message being built against its limit; a
// nil budget has no limit.
type budget struct{ left int }

func newBudget(limit int) *budget {
	if limit <= 0 {
		return nil
	}
	return &budget{left: limit}
}

// take counts n more bytes: ErrTooLarge past the limit.
func (b *budget) take(n int) error {
	if b == nil {
		return nil
	}
	if n > b.left {
		b.left = 0
		return ErrTooLarge
	}
	b.left -= n
	return nil
}

// room is how many bytes may still be taken.
func (b *budget) room() int {
	if b == nil {
		return math.MaxInt
	}
	return b.left
}

// buildHeader writes the message's own header fields (RFC 5322 §3.6).
func buildHeader(m *Message) ([]byte, error) {
	if m.From.Email == "" {
		return nil, ErrNoFrom
	}
	var err error
	dst := make([]byte, 0, 512)
	if !m.Date.IsZero() {
		// RFC 5322 §3.3 date-time, numeric zone.
		dst = append(dst, "Date: "...)
		dst = m.Date.AppendFormat(dst, "Mon, 02 Jan 2006 15:04:05 -0700")
		dst = append(dst, '\r', '\n')
	}
	if dst, err = appendAddressList(dst, "From", []Address{m.From}); err != nil {
		return nil, err
	}
	lists := []struct {
		name string
		list []Address
	}{{"Reply-To", m.ReplyTo}, {"To", m.To}, {"Cc", m.Cc}}
	for _, l := range lists {
		if len(l.list) == 0 {
			continue
		}
		if dst, err = appendAddressList(dst, l.name, l.list); err != nil {
			return nil, err
		}
	}
	if m.Subject != "" {
		if err := checkValue(m.Subject); err != nil {
			return nil, fmt.Errorf("Subject: %w", err)
		}
		if dst, err = appendField(dst, "Subject", unstructuredTokens("Subject", m.Subject)); err != nil {
			return nil, err
		}
	}
	if m.MessageID != "" {
		if err := checkMessageID(m.MessageID); err != nil {
			return nil, err
		}
		dst = append(dst, "Message-ID: <"...)
		dst = append(dst, m.MessageID...)
		dst = append(dst, ">\r\n"...)
	}
	for _, h := range m.Headers {
		if err := CheckHeaderName(h.Name); err != nil {
			return nil, err
		}
		if IsReservedHeader(h.Name) {
			return nil, fmt.Errorf("%w: %s", ErrReservedHeader, h.Name)
		}
		if err := checkValue(h.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		v := strings.Trim(h.Value, " \t")
		var tokens []string
		if isPrintableASCII(v) {
			// Written as given (it may be structured, or pre-encoded).
			tokens = strings.Split(v, " ")
		} else {
			tokens = encodeWords(v, firstWordMax(h.Name))
		}
		if dst, err = appendField(dst, h.Name, tokens); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 32 && c != '\t') || c > 126 {
			return false
		}
	}
	return true
}

// checkMessageID accepts id-left "@" id-right made of printable ASCII
// without white space, angle brackets or a second "@" (RFC 5322 §3.6.4,
// leniently: dot-atom-text or no-fold-literal on each side).
func checkMessageID(id string) error {
	if HasCRLF(id) {
		return fmt.Errorf("%w: Message-ID", ErrHeaderInjection)
	}
	at := strings.IndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || strings.Count(id, "@") != 1 || len(id) > 250 {
		return fmt.Errorf("%w: %q", ErrBadMessageID, id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 32 || c >= 127 || c == '<' || c == '>' || c == '"' || c == '\\' {
			return fmt.Errorf("%w: %q", ErrBadMessageID, id)
		}
	}
	return nil
}

// part is one MIME entity: its header lines (Content-* only) and either an
// encoded body or children.
type part struct {
	header   []byte
	body     []byte
	subtype  string // multipart subtype when children != nil
	children []*part
}

// buildBody chooses the structure described in the package comment. Each
// part's encoded size is taken from b before the next part is encoded.
func buildBody(m *Message, b *budget) (*part, error) {
	var content *part
	switch {
	case m.Text != "" && m.HTML != "":
		plain, err := textPart("plain", m.Text, b)
		if err != nil {
			return nil, err
		}
		html, err := textPart("html", m.HTML, b)
		if err != nil {
			return nil, err
		}
		content = &part{subtype: "alternative", children: []*part{plain, html}}
	case m.HTML != "":
		p, err := textPart("html", m.HTML, b)
		if err != nil {
			return nil, err
		}
		content = p
	default:
		p, err := textPart("plain", m.Text, b)
		if err != nil {
			return nil, err
		}
		content = p
	}
	var inline, attached []*part
	for i := range m.Attachments {
		p, err := attachmentPart(&m.Attachments[i], b)
		if err != nil {
			return nil, err
		}
		if m.Attachments[i].ContentID != "" {
			inline = append(inline, p)
		} else {
			attached = append(attached, p)
		}
	}
	if len(inline) > 0 {
		content = &part{subtype: "related", children: append([]*part{content}, inline...)}
	}
	if len(attached) > 0 {
		content = &part{subtype: "mixed", children: append([]*part{content}, attached...)}
	}
	return content, nil
}

// textPart encodes one text body. Its encoding is never shorter than the
// text, so a text longer than b's room is refused before it is copied.
func textPart(subtype, text string, b *budget) (*part, error) {
	if len(text) > b.room() {
		return nil, ErrTooLarge
	}
	cte, body, err := encodeText(normalizeNewlines(text), b.room())
	if err != nil {
		return nil, err
	}
	h := "Content-Type: text/" + subtype + "; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n"
	if err := b.take(len(h) + 2 + len(body)); err != nil {
		return nil, err
	}
	return &part{header: []byte(h), body: body}, nil
}

func attachmentPart(a *Attachment, b *budget) (*part, error) {
	ctype := a.ContentType
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if HasCRLF(ctype) {
		return nil, fmt.Errorf("%w: attachment content type", ErrHeaderInjection)
	}
	mediatype, params, err := mime.ParseMediaType(ctype)
	slash := strings.IndexByte(mediatype, '/')
	if err != nil || slash <= 0 || slash == len(mediatype)-1 ||
		strings.HasPrefix(mediatype, "multipart/") || strings.HasPrefix(mediatype, "message/") {
		return nil, fmt.Errorf("%w: %q", ErrBadContentType, ctype)
	}
	if HasCRLF(a.Filename) {
		return nil, fmt.Errorf("%w: attachment file name", ErrHeaderInjection)
	}
	if err := checkValue(a.Filename); err != nil || len(a.Filename) > 255 {
		return nil, fmt.Errorf("%w: %q", ErrBadFilename, a.Filename)
	}
	if a.Filename != "" {
		// The name parameter is obsolete but still read by some clients.
		params["name"] = a.Filename
	}
	h := make([]byte, 0, 256)
	ct := mime.FormatMediaType(mediatype, params)
	if ct == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadContentType, ctype)
	}
	if h, err = appendField(h, "Content-Type", strings.Split(ct, " ")); err != nil {
		return nil, err
	}
	h = append(h, "Content-Transfer-Encoding: base64\r\n"...)
	disposition := "attachment"
	if a.ContentID != "" {
		disposition = "inline"
		if err := checkContentID(a.ContentID); err != nil {
			return nil, err
		}
		h = append(h, "Content-ID: <"...)
		h = append(h, a.ContentID...)
		h = append(h, ">\r\n"...)
	}
	var dparams map[string]string
	if a.Filename != "" {
		dparams = map[string]string{"filename": a.Filename}
	}
	// RFC 2183 disposition; FormatMediaType applies RFC 2231 to non-ASCII names.
	cd := mime.FormatMediaType(disposition, dparams)
	if h, err = appendField(h, "Content-Disposition", strings.Split(cd, " ")); err != nil {
		return nil, err
	}
	if err := b.take(len(h) + 2 + base64Len(len(a.Data))); err != nil {
		return nil, err
	}
	return &part{header: h, body: encodeBase64(a.Data)}, nil
}

// checkContentID accepts a msg-id body (RFC 2045 §7, RFC 5322 §3.6.4); a
// bare token without "@" is tolerated as many senders use one.
func checkContentID(id string) error {
	if HasCRLF(id) {
		return fmt.Errorf("%w: Content-ID", ErrHeaderInjection)
	}
	if len(id) > 250 {
		return fmt.Errorf("%w: Content-ID too long", ErrBadHeaderValue)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 32 || c >= 127 || c == '<' || c == '>' || c == '"' || c == '\\' {
			return fmt.Errorf("%w: Content-ID %q", ErrBadHeaderValue, id)
		}
	}
	return nil
}

// maxBoundaryTries bounds the draws of a boundary that collides with the
// content; with 128 random bits a second draw is already astronomically rare.
const maxBoundaryTries = 8

// render returns the part's header lines, the blank line and its body. For a
// multipart it draws a boundary that occurs in none of the rendered children
// (RFC 2046 §5.1.1) and writes the delimiters with CRLF before each.
func (p *part) render(rnd io.Reader) ([]byte, error) {
	if p.children == nil {
		out := make([]byte, 0, len(p.header)+2+len(p.body))
		out = append(out, p.header...)
		out = append(out, '\r', '\n')
		return append(out, p.body...), nil
	}
	kids := make([][]byte, len(p.children))
	size := 0
	for i, c := range p.children {
		b, err := c.render(rnd)
		if err != nil {
			return nil, err
		}
		kids[i] = b
		size += len(b) + 100
	}
	var boundary string
	for try := 0; ; try++ {
		if try == maxBoundaryTries {
			return nil, ErrBoundary
		}
		var raw [16]byte
		if _, err := io.ReadFull(rnd, raw[:]); err != nil {
			return nil, fmt.Errorf("mimebuild: boundary: %w", err)
		}
		// "=_" can occur neither in quoted-printable nor in base64 text.
		boundary = "=_" + hex.EncodeToString(raw[:])
		free := true
		for _, k := range kids {
			if bytes.Contains(k, []byte(boundary)) {
				free = false
				break
			}
		}
		if free {
			break
		}
	}
	out := make([]byte, 0, size+128)
	out, err := appendField(out, "Content-Type", []string{"multipart/" + p.subtype + ";", `boundary="` + boundary + `"`})
	if err != nil {
		return nil, err
	}
	out = append(out, '\r', '\n')
	for _, k := range kids {
		out = append(out, "--"...)
		out = append(out, boundary...)
		out = append(out, '\r', '\n')
		out = append(out, k...)
		out = append(out, '\r', '\n')
	}
	out = append(out, "--"...)
	out = append(out, boundary...)
	out = append(out, "--\r\n"...)
	return out, nil
}
