package e2e

import "bytes"

// edgeCase is one message whose bytes must survive relaying unchanged.
type edgeCase struct {
	name        string
	rcpt        string // unique per case, so the receiver's copy can be found
	from        string // "" for senderAddr
	mailOptions []string
	data        []byte // what the client is given
}

func (c edgeCase) sender() string { return cmpOr(c.from, senderAddr) }

// want is what a receiver must see: smtplib ends the data with CRLF when it
// does not already (RFC 5321 §4.1.1.4: the CRLF before "." ends the last line),
// so an empty message arrives as one empty line.
func (c edgeCase) want() []byte {
	if bytes.HasSuffix(c.data, []byte("\r\n")) {
		return c.data
	}
	return append(append([]byte(nil), c.data...), '\r', '\n')
}

// edgeCases are the dot-stuffing, 8-bit and UTF-8 messages of the relay test
// (and the harness self-test, which checks the expectations against aiosmtpd
// directly).
func edgeCases() []edgeCase {
	latin1 := append(crlf("From: <sender@src.test>\nTo: <latin1@d1.test>\nSubject: latin-1\n"+
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"),
		[]byte("Caf\xe9 cr\xe8me br\xfbl\xe9e \xa9 \xff\xfe\r\nna\xefve\r\n")...)
	return []edgeCase{
		{name: "dot lines", rcpt: "dots@" + domain1, data: crlf(
			"From: <sender@src.test>\nTo: <dots@d1.test>\nSubject: dots\n\n" +
				".\n..\n.foo\n..bar\n. \n...\nnot.a.dot\n.\n\n.\nend\n")},
		{name: "last line without CRLF", rcpt: "nocrlf@" + domain1, data: crlf(
			"From: <sender@src.test>\nSubject: no final crlf\n\nfirst line\n.last line has no CRLF")},
		{name: "headers and empty body", rcpt: "emptybody@" + domain1, data: crlf(
			"From: <sender@src.test>\nTo: <emptybody@d1.test>\nSubject: empty body\n\n")},
		{name: "empty content", rcpt: "empty@" + domain1, data: []byte{}},
		{name: "8-bit latin-1", rcpt: "latin1@" + domain1, mailOptions: []string{"BODY=8BITMIME"}, data: latin1},
		{name: "SMTPUTF8", rcpt: "üser.ñame@" + domain1, from: "jörg@src.test", mailOptions: []string{"SMTPUTF8", "BODY=8BITMIME"}, data: crlf(
			"From: Jörg Müller <jörg@src.test>\nTo: <üser.ñame@d1.test>\nSubject: Grüße aus Köln ✓ 日本語\n" +
				"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" +
				"Ünïcödé body ✓\n.ñ leading dot and UTF-8\n")},
	}
}
