package queue

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Test helpers shared by the spool tests and benchmarks.

var mailWords = strings.Fields(`the order your account invoice shipping update weekly
newsletter offer discount customer support team please click here view browser
unsubscribe privacy policy terms conditions thank you for shopping with us today
new arrivals sale ends soon free delivery on orders over limited time only best
regards hello welcome back password reset confirm email address receipt total`)

// testMail returns a realistic MIME message of about size bytes: headers, a
// text/plain part and a quoted-printable text/html part with the same words,
// as bulk senders produce. The same (seed, size) gives the same bytes.
func testMail(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b strings.Builder
	boundary := fmt.Sprintf("=_b%016x", r.Uint64())
	fmt.Fprintf(&b, "Received: from app%d.example.test (app%d.example.test [127.0.0.%d])\r\n\tby relay.example.test with ESMTPS id %x\r\n",
		r.IntN(9), r.IntN(9), r.IntN(250)+1, r.Uint64())
	fmt.Fprintf(&b, "From: \"Shop %d\" <news@shop%d.example>\r\nTo: <user%d@mail%d.example>\r\n", r.IntN(50), r.IntN(50), r.IntN(1e6), r.IntN(100))
	fmt.Fprintf(&b, "Subject: Your weekly offers #%d\r\nDate: Mon, 2 Mar 2026 10:%02d:%02d +0000\r\n", r.IntN(1e4), r.IntN(60), r.IntN(60))
	fmt.Fprintf(&b, "Message-ID: <%x.%x@shop.example>\r\nMIME-Version: 1.0\r\n", r.Uint64(), r.Uint32())
	fmt.Fprintf(&b, "List-Unsubscribe: <https://shop.example/u/%x>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", r.Uint64())
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary)
	var words []string
	for n := 0; n < size/3; {
		w := mailWords[r.IntN(len(mailWords))]
		if r.IntN(12) == 0 {
			w = fmt.Sprintf("%d", r.IntN(100000))
		}
		words = append(words, w)
		n += len(w) + 1
	}
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	line := 0
	for _, w := range words {
		b.WriteString(w)
		line += len(w) + 1
		if line > 70 {
			b.WriteString("\r\n")
			line = 0
		} else {
			b.WriteByte(' ')
		}
	}
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary)
	b.WriteString("<!DOCTYPE html><html><head><meta http-equiv=3D\"Content-Type\" content=3D\"text/html\"></head>=\r\n<body style=3D\"margin:0;padding:0\"><table width=3D\"100%\" cellpadding=3D\"0\">=\r\n")
	for i := 0; i < len(words); i += 12 {
		end := min(i+12, len(words))
		fmt.Fprintf(&b, "<tr><td style=3D\"font-family:Arial;font-size:14px\">%s</td></tr>=\r\n", strings.Join(words[i:end], " "))
		if r.IntN(8) == 0 {
			fmt.Fprintf(&b, "<tr><td><a href=3D\"https://shop.example/p/%x?utm_source=3Dmail\">View</a></td></tr>=\r\n", r.Uint64())
		}
	}
	fmt.Fprintf(&b, "</table></body></html>\r\n--%s--\r\n", boundary)
	return []byte(b.String())
}

// testAttachmentMail returns testMail of about size/5 bytes followed by an
// attachment of about 4*size/5 bytes: base64 of random bytes, 76 characters
// a line, the way a JPEG or a PDF travels. It does not compress (but for
// base64's 6 bits a byte, which only an entropy coder like zstd's gets).
func testAttachmentMail(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	raw := make([]byte, size*4/5*3/4)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	b.Write(testMail(seed, size/5))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return []byte(b.String())
}

// testMessage returns a message with n pending recipients.
func testMessage(id string, n int) *Message {
	m := &Message{ID: id, From: "bounce@shop.example", Tenant: "acme", Campaign: "spring", Priority: 1}
	for i := range n {
		m.Recipients = append(m.Recipients, Recipient{Addr: fmt.Sprintf("user%d@mail%d.example", i, i%3)})
	}
	return m
}
