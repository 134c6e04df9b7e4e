package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// receiverStartMax bounds how long a receiver may take to greet.
const receiverStartMax = 15 * time.Second

// arrival is one mail transaction as a receiver saw it.
type arrival struct {
	MailFrom    string
	Rcpts       []string
	MailOptions []string
	Data        []byte // the message as received, dot-unstuffed, CRLF lines
	TLS         bool
	File        string // where the receiver saved it
}

// receiver is a running SMTP receiver that saves what it gets.
type receiver interface {
	addr() string
	arrivals(t testing.TB) []arrival
}

// countRcpts sums the recipients of every arrival at r.
func countRcpts(t testing.TB, r receiver) int {
	n := 0
	for _, a := range r.arrivals(t) {
		n += len(a.Rcpts)
	}
	return n
}

// ---- aiosmtpd ----

// aioOptions selects the faults and TLS of an aiosmtpd receiver.
type aioOptions struct {
	TempfailFirst string // e.g. "451 4.3.0 try again later": first RCPT of each (sender, rcpt) refused
	FailRcpt      string // e.g. "550 5.1.1 no such user": every RCPT refused
	TLSCert       string // PEM paths; STARTTLS offered when set
	TLSKey        string
	RequireTLS    bool // offer REQUIRETLS (RFC 8689) under TLS
}

// aioSink is testdata/aiosmtpd_sink.py: exact bytes and envelope per message.
type aioSink struct {
	listen string
	dir    string
	p      *proc
}

func startAiosmtpd(t testing.TB, listen string, o aioOptions) *aioSink {
	t.Helper()
	py := needPythonModule(t, "aiosmtpd", "python3-aiosmtpd")
	script, err := filepath.Abs("testdata/aiosmtpd_sink.py")
	if err != nil {
		t.Fatal(err)
	}
	s := &aioSink{listen: listen, dir: t.TempDir()}
	args := []string{script, "--listen", listen, "--dir", s.dir}
	if o.TempfailFirst != "" {
		args = append(args, "--tempfail-first", o.TempfailFirst)
	}
	if o.FailRcpt != "" {
		args = append(args, "--fail-rcpt", o.FailRcpt)
	}
	if o.TLSCert != "" {
		args = append(args, "--tls-cert", o.TLSCert, "--tls-key", o.TLSKey)
	}
	if o.RequireTLS {
		args = append(args, "--requiretls")
	}
	s.p = startProc(t, py, args...)
	waitBanner(t, listen, s.p, receiverStartMax)
	return s
}

func (s *aioSink) addr() string { return s.listen }

func (s *aioSink) arrivals(t testing.TB) []arrival {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(metas)
	var out []arrival
	for _, m := range metas {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			MailFrom    string   `json:"mail_from"`
			RcptTos     []string `json:"rcpt_tos"`
			MailOptions []string `json:"mail_options"`
			TLS         bool     `json:"tls"`
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		eml := strings.TrimSuffix(m, ".json") + ".eml"
		data, err := os.ReadFile(eml)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, arrival{MailFrom: meta.MailFrom, Rcpts: meta.RcptTos,
			MailOptions: meta.MailOptions, Data: data, TLS: meta.TLS, File: eml})
	}
	return out
}

// ---- Postfix smtp-sink ----

// postfixSink is Postfix's smtp-sink with a dump file per transaction.
type postfixSink struct {
	listen string
	dir    string
	p      *proc
}

// startSmtpSink starts smtp-sink on listen; extra are its fault options, e.g.
// "-f", "RCPT", "-B", "550 5.1.1 no such user".
func startSmtpSink(t testing.TB, listen string, extra ...string) *postfixSink {
	t.Helper()
	bin := needExecutable(t, "/usr/sbin/smtp-sink", "postfix")
	s := &postfixSink{listen: listen, dir: t.TempDir()}
	args := append([]string{"-u", "root", "-h", "smtp-sink.e2e.test", "-d", s.dir + "/msg."}, extra...)
	args = append(args, listen, "256")
	s.p = startProc(t, bin, args...)
	waitBanner(t, listen, s.p, receiverStartMax)
	return s
}

func (s *postfixSink) addr() string { return s.listen }

// arrivals parses smtp-sink's dump files (see smtp-sink(1), DUMP FILE FORMAT):
// X-Mail-Args and X-Rcpt-Args lines, a three-line Received header, the message
// with LF line ends, and one empty line. A file not yet ending in that empty
// line is a transaction in progress and is left out.
func (s *postfixSink) arrivals(t testing.TB) []arrival {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.dir, "msg.*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []arrival
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(b, []byte("\n\n")) {
			continue
		}
		a := arrival{File: f}
		lines := strings.Split(string(b[:len(b)-1]), "\n")
		i := 0
		for ; i < len(lines); i++ {
			l := lines[i]
			if v, ok := strings.CutPrefix(l, "X-Mail-Args: "); ok {
				addr, opts, _ := strings.Cut(v, " ")
				a.MailFrom = strings.Trim(addr, "<>")
				a.MailOptions = strings.Fields(opts)
			} else if v, ok := strings.CutPrefix(l, "X-Rcpt-Args: "); ok {
				addr, _, _ := strings.Cut(v, " ")
				a.Rcpts = append(a.Rcpts, strings.Trim(addr, "<>"))
			} else if strings.HasPrefix(l, "Received: ") {
				i += 3 // "Received: from", "\tby", "\tdate"
				break
			}
		}
		if i <= len(lines) {
			body := strings.Join(lines[min(i, len(lines)):], "\r\n")
			a.Data = []byte(strings.TrimSuffix(body, "\r\n"))
			if len(a.Data) > 0 {
				a.Data = append(a.Data, '\r', '\n')
			}
		}
		out = append(out, a)
	}
	return out
}

// ---- bench/smtpsink ----

// goSink is the repository's bench/smtpsink (bin/smtpsink), started with
// -listen ADDR -dump DIR and optional -fail STAGE:CODE:PROB.
type goSink struct {
	listen string
	dir    string
	p      *proc
}

func startGoSink(t testing.TB, listen string, fail ...string) *goSink {
	t.Helper()
	bin := smtpsinkBinary(t)
	s := &goSink{listen: listen, dir: t.TempDir()}
	args := []string{"-listen", listen, "-dump", s.dir}
	for _, f := range fail {
		args = append(args, "-fail", f)
	}
	s.p = startProc(t, bin, args...)
	waitBanner(t, listen, s.p, receiverStartMax)
	return s
}

func (s *goSink) addr() string { return s.listen }

// arrivals reads smtpsink's dump: NNNNNNNNN.eml (the message, byte-exact)
// and NNNNNNNNN.json (the envelope), the .json written after the .eml. A
// .json that does not parse yet is a message still being written.
func (s *goSink) arrivals(t testing.TB) []arrival {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(metas)
	var out []arrival
	for _, m := range metas {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			From  string   `json:"from"`
			Rcpts []string `json:"rcpts"`
			TLS   bool     `json:"tls"`
		}
		if json.Unmarshal(b, &meta) != nil {
			continue
		}
		eml := strings.TrimSuffix(m, ".json") + ".eml"
		data, err := os.ReadFile(eml)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, arrival{MailFrom: meta.From, Rcpts: meta.Rcpts, Data: data, TLS: meta.TLS, File: eml})
	}
	return out
}
