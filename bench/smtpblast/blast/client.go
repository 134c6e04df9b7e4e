package blast

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// replyError is a reply that ended a connection setup step.
type replyError struct {
	step string
	code int
	text string
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %d %s", e.step, e.code, e.text) }

// client is one SMTP client connection.
type client struct {
	conn       net.Conn
	r          *bufio.Reader
	w          *bufio.Writer
	timeout    time.Duration
	pipelining bool // the server offers PIPELINING and the config allows it
	codes      *[600]uint64
}

// dial connects, reads the greeting, says EHLO, upgrades with STARTTLS and
// authenticates as configured (RFC 5321 §3.1, RFC 3207, RFC 4954).
func dial(ctx context.Context, cfg *Config, codes *[600]uint64) (*client, error) {
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.Server)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), w: bufio.NewWriterSize(conn, 64<<10), timeout: cfg.Timeout, codes: codes}
	if err := c.setup(cfg); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *client) setup(cfg *Config) error {
	c.deadline()
	if code, text, err := c.reply(nil); err != nil {
		return err
	} else if code/100 != 2 {
		return &replyError{"greeting", code, text}
	}
	exts, err := c.ehlo(cfg.EHLO)
	if err != nil {
		return err
	}
	if cfg.StartTLS {
		if !exts["STARTTLS"] {
			return errors.New("server does not offer STARTTLS")
		}
		if code, text, err := c.cmd("STARTTLS"); err != nil {
			return err
		} else if code != 220 {
			return &replyError{"STARTTLS", code, text}
		}
		host, _, _ := net.SplitHostPort(cfg.Server)
		tc := tls.Client(c.conn, &tls.Config{ServerName: host, InsecureSkipVerify: cfg.Insecure, RootCAs: cfg.RootCAs})
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		c.conn = tc
		c.r.Reset(tc)
		c.w.Reset(tc)
		// RFC 3207 §4.2: forget what was learned before TLS, ask again.
		if exts, err = c.ehlo(cfg.EHLO); err != nil {
			return err
		}
	}
	if cfg.AuthUser != "" {
		// RFC 4616: message = [authzid] NUL authcid NUL passwd.
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + cfg.AuthUser + "\x00" + cfg.AuthPass))
		if code, text, err := c.cmd("AUTH PLAIN " + ir); err != nil {
			return err
		} else if code != 235 {
			return &replyError{"AUTH", code, text}
		}
	}
	c.pipelining = cfg.Pipelining && exts["PIPELINING"]
	return nil
}

// ehlo sends EHLO and returns the advertised extension keywords.
func (c *client) ehlo(name string) (map[string]bool, error) {
	c.w.WriteString("EHLO " + name + "\r\n")
	if err := c.flush(); err != nil {
		return nil, err
	}
	exts := map[string]bool{}
	first := true
	code, text, err := c.reply(func(line []byte) {
		if first {
			first = false
			return
		}
		kw, _, _ := bytes.Cut(line, []byte(" "))
		exts[string(bytes.ToUpper(kw))] = true
	})
	if err != nil {
		return nil, err
	}
	if code != 250 {
		return nil, &replyError{"EHLO", code, text}
	}
	return exts, nil
}

func (c *client) deadline() { c.conn.SetDeadline(time.Now().Add(c.timeout)) }

func (c *client) flush() error {
	c.deadline()
	return c.w.Flush()
}

// cmd sends one command and reads its reply.
func (c *client) cmd(line string) (int, string, error) {
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.flush(); err != nil {
		return 0, "", err
	}
	return c.reply(nil)
}

// reply reads one reply (RFC 5321 §4.2.1), calling each with the text of
// every line, and returns the code and the text of the last line. The code
// is counted.
func (c *client) reply(each func(text []byte)) (int, string, error) {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return 0, "", errors.New("reply line too long")
			}
			return 0, "", err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return 0, "", fmt.Errorf("malformed reply %q", line)
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if code < 200 || code > 599 {
			// RFC 5321 §4.2: the first digit is 2 to 5.
			return 0, "", fmt.Errorf("malformed reply %q", line)
		}
		var text []byte
		if len(line) > 4 {
			text = line[4:]
		}
		if each != nil {
			each(text)
		}
		if len(line) == 3 || line[3] == ' ' {
			c.codes[code]++
			return code, string(text), nil
		}
	}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// txResult is the outcome of one transaction.
type txResult struct {
	code     int    // final reply code (0: no final reply)
	text     string // final reply text
	rcptOK   int
	rcptFail int
	acked    bool // the server took the message for at least one recipient
	// dot is the time from the end of the data (the "." line sent) to the
	// final reply; 0 when the body was not sent.
	dot    time.Duration
	broken bool // the connection is unusable (I/O error or 421)
	err    error
}

// send runs one mail transaction: MAIL, RCPTs, DATA, body. With PIPELINING the
// three command kinds go out in one write and the body follows the 354 (RFC
// 2920 §3.1: DATA is the last command of a group).
func (c *client) send(from string, m *message) txResult {
	var res txResult
	c.w.WriteString("MAIL FROM:<")
	c.w.WriteString(from)
	c.w.WriteString(">\r\n")
	if !c.pipelining {
		if err := c.flush(); err != nil {
			return txResult{broken: true, err: err}
		}
	}
	mailCode := 0
	readMail := func() error {
		code, text, err := c.reply(nil)
		mailCode, res.code, res.text = code, code, text
		return err
	}
	if !c.pipelining {
		if err := readMail(); err != nil {
			return txResult{broken: true, err: err}
		}
		if mailCode != 250 {
			res.broken = mailCode == 421
			return res
		}
	}
	for _, r := range m.rcpts {
		c.w.WriteString("RCPT TO:<")
		c.w.WriteString(r)
		c.w.WriteString(">\r\n")
		if !c.pipelining {
			if err := c.flush(); err != nil {
				return txResult{broken: true, err: err}
			}
			code, text, err := c.reply(nil)
			if err != nil {
				return txResult{broken: true, err: err}
			}
			c.countRcpt(&res, code, text)
			if code == 421 {
				res.broken = true
				return res
			}
		}
	}
	if !c.pipelining && res.rcptOK == 0 {
		c.cmd("RSET")
		return res
	}
	c.w.WriteString("DATA\r\n")
	if err := c.flush(); err != nil {
		return txResult{broken: true, err: err}
	}
	if c.pipelining {
		if err := readMail(); err != nil {
			return txResult{broken: true, err: err}
		}
		for range m.rcpts {
			code, text, err := c.reply(nil)
			if err != nil {
				return txResult{broken: true, err: err}
			}
			c.countRcpt(&res, code, text)
		}
	}
	code, text, err := c.reply(nil)
	if err != nil {
		return txResult{broken: true, err: err, rcptOK: res.rcptOK, rcptFail: res.rcptFail}
	}
	if code != 354 {
		res.code, res.text = code, text
		if mailCode == 250 && code/100 != 5 && code != 421 {
			// The transaction is still open: reset it (RFC 5321 §4.1.1.5).
			c.cmd("RSET")
		}
		res.broken = code == 421 || mailCode == 421
		return res
	}
	if res.rcptOK == 0 || mailCode != 250 {
		// A server that says 354 with no valid recipient gets an empty
		// message, which it must refuse (RFC 2920 §3.1).
		c.w.WriteString(".\r\n")
	} else {
		c.w.Write(m.header)
		c.w.Write(m.body.stuffed)
		c.w.WriteString(".\r\n")
	}
	if err := c.flush(); err != nil {
		return txResult{broken: true, err: err}
	}
	dotAt := time.Now()
	code, text, err = c.reply(nil)
	if err != nil {
		return txResult{broken: true, err: err, rcptOK: res.rcptOK, rcptFail: res.rcptFail}
	}
	res.dot = time.Since(dotAt)
	res.code, res.text = code, text
	res.acked = code/100 == 2 && res.rcptOK > 0 && mailCode == 250
	res.broken = code == 421
	return res
}

func (c *client) countRcpt(res *txResult, code int, text string) {
	if code/100 == 2 {
		res.rcptOK++
		return
	}
	res.rcptFail++
	if res.rcptOK == 0 {
		res.code, res.text = code, text
	}
}

// quit says goodbye and closes.
func (c *client) quit() {
	c.w.WriteString("QUIT\r\n")
	if c.flush() == nil {
		c.conn.SetDeadline(time.Now().Add(time.Second))
		c.reply(nil)
	}
	c.conn.Close()
}

// queueID extracts the id from a reply text such as "2.0.0 OK id=<ID>" or
// "2.0.0 Ok: queued as ABC" ("" when there is none).
func queueID(text string) string {
	fields := strings.Fields(text)
	for i, f := range fields {
		if id, ok := strings.CutPrefix(f, "id="); ok {
			return strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
		}
		if f == "as" && i > 0 && fields[i-1] == "queued" && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	return ""
}
