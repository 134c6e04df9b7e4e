package mimebuild

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// node is one MIME entity as a parser saw it; the same shape comes from
// Python (testdata/parse_email.py) and from Go (goParse).
type node struct {
	ContentType string  `json:"content_type"`
	Parts       []node  `json:"parts,omitempty"`
	Charset     *string `json:"charset"`
	CTE         string  `json:"cte"`
	Filename    *string `json:"filename"`
	Disposition *string `json:"disposition"`
	ContentID   *string `json:"content_id"`
	DataB64     string  `json:"data_b64"`
}

type parsed struct {
	Headers [][2]string `json:"headers"`
	Defects []string    `json:"defects"`
	Body    node        `json:"body"`
}

// header returns the decoded values of the named field.
func (p *parsed) header(name string) []string {
	var vs []string
	for _, h := range p.Headers {
		if strings.EqualFold(h[0], name) {
			vs = append(vs, h[1])
		}
	}
	return vs
}

func (n node) data(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(n.DataB64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shape renders the tree of content types: "multipart/mixed(text/plain,image/png)".
func (n node) shape() string {
	if len(n.Parts) == 0 {
		return n.ContentType
	}
	var s []string
	for _, p := range n.Parts {
		s = append(s, p.shape())
	}
	return n.ContentType + "(" + strings.Join(s, ",") + ")"
}

// leaves returns the non-multipart entities in order.
func (n node) leaves() []node {
	if len(n.Parts) == 0 {
		return []node{n}
	}
	var out []node
	for _, p := range n.Parts {
		out = append(out, p.leaves()...)
	}
	return out
}

const python = "/usr/bin/python3"

// pythonParse runs Python's email package over raw. Missing python3 skips
// loudly, or fails under CI=true.
func pythonParse(t testing.TB, raw []byte) parsed {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required: %v", python, err)
		}
		t.Skipf("SKIPPING: %s not found: %v", python, err)
	}
	cmd := exec.Command(python, "testdata/parse_email.py")
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python parse: %v\n%s", err, stderr.String())
	}
	var p parsed
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	return p
}

// goParse reads raw with net/mail and mime/multipart (raw parts, decoding
// the transfer encodings itself).
func goParse(raw []byte) (parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return parsed{}, err
	}
	var p parsed
	dec := new(mime.WordDecoder)
	for name, vs := range msg.Header {
		for _, v := range vs {
			if d, err := dec.DecodeHeader(v); err == nil {
				v = d
			}
			p.Headers = append(p.Headers, [2]string{name, v})
		}
	}
	p.Body, err = goEntity(textproto.MIMEHeader(msg.Header), msg.Body, 0)
	return p, err
}

func goEntity(h textproto.MIMEHeader, body io.Reader, depth int) (node, error) {
	if depth > 10 {
		return node{}, fmt.Errorf("too deep")
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return node{}, fmt.Errorf("content-type %q: %v", ct, err)
	}
	n := node{ContentType: mt}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, err
			}
			child, err := goEntity(p.Header, p, depth+1)
			if err != nil {
				return n, err
			}
			n.Parts = append(n.Parts, child)
		}
		if len(n.Parts) == 0 {
			return n, fmt.Errorf("multipart without parts")
		}
		return n, nil
	}
	if cs, ok := params["charset"]; ok {
		n.Charset = &cs
	}
	if name, ok := params["name"]; ok {
		n.Filename = &name
	}
	if cd := h.Get("Content-Disposition"); cd != "" {
		disp, dp, err := mime.ParseMediaType(cd)
		if err != nil {
			return n, fmt.Errorf("content-disposition %q: %v", cd, err)
		}
		n.Disposition = &disp
		if fn, ok := dp["filename"]; ok {
			n.Filename = &fn
		}
	}
	if cid := h.Get("Content-ID"); cid != "" {
		n.ContentID = &cid
	}
	n.CTE = h.Get("Content-Transfer-Encoding")
	var r io.Reader = bufio.NewReader(body)
	switch strings.ToLower(n.CTE) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "", "7bit", "8bit":
	default:
		return n, fmt.Errorf("unknown transfer encoding %q", n.CTE)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return n, fmt.Errorf("%s body: %v", n.CTE, err)
	}
	n.DataB64 = base64.StdEncoding.EncodeToString(data)
	return n, nil
}
