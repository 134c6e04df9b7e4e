package e2e

// End-to-end DKIM: keys made with `gannet dkim-keygen`, published as TXT
// records by the test dnsmasq, messages signed by bin/gannet on their way
// from real clients (Python smtplib, curl on the HTTP API) to a real
// receiver (aiosmtpd, exact bytes), and the delivered bytes checked by two
// independent verifiers that look the keys up in DNS:
//
//   - dkimpy (Debian python3-dkim): testdata/dkim_verify.py for every
//     signature (dnspython asks our dnsmasq), and the `dkimverify` CLI;
//   - libopendkim (the library of opendkim): testdata/opendkim_verify.py.
//     Debian 12's opendkim-testmsg fails every message with "dkim_chunk():
//     Syntax error" (signed or not), so the library is driven directly.
//
// dkimverify and libopendkim use the system resolver, which cannot be given
// a port: dnsmasq therefore listens on port 53 of a spare 127.0.0.x address,
// and those two run in a private mount namespace (`unshare -m`) whose
// /etc/resolv.conf is bind-mounted to name it. That needs root; without it
// the test skips loudly (fails under CI=true).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dkimKey is a key made by `gannet dkim-keygen` and its DNS record.
type dkimKey struct {
	domain, selector, file string
	name                   string   // "<selector>._domainkey.<domain>"
	strings                []string // the TXT character-strings
}

// keygen runs `gannet dkim-keygen` and parses the record it prints.
func keygen(t *testing.T, dir, domain, selector, algo string) dkimKey {
	t.Helper()
	out, err := exec.Command(gannetBinary(t), "dkim-keygen", "-domain", domain, "-selector", selector,
		"-algo", algo, "-out", dir).Output()
	if err != nil {
		t.Fatalf("gannet dkim-keygen: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`^(\S+)\. IN TXT((?: "[^"]*")+)\n$`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("dkim-keygen printed %q, want `NAME. IN TXT \"…\"…`", out)
	}
	k := dkimKey{domain: domain, selector: selector, name: m[1],
		file: filepath.Join(dir, selector+"._domainkey."+domain+".pem")}
	for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
		k.strings = append(k.strings, s[1])
	}
	if _, err := os.Stat(k.file); err != nil {
		t.Fatal(err)
	}
	return k
}

// txtRecords are the dnsmasq options that publish the keys' DNS records.
func txtRecords(keys ...dkimKey) []string {
	var opts []string
	for _, k := range keys {
		opts = append(opts, "--txt-record="+k.name+","+strings.Join(k.strings, ","))
	}
	return opts
}

// port53Address finds a 127.0.0.x where UDP and TCP port 53 are free.
func port53Address(t *testing.T) string {
	t.Helper()
	for x := 53; x < 80; x++ {
		ip := fmt.Sprintf("127.0.0.%d", x)
		pc, err := net.ListenPacket("udp", ip+":53")
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp", ip+":53")
		pc.Close()
		if err != nil {
			continue
		}
		l.Close()
		return ip
	}
	t.Fatal("no 127.0.0.x with port 53 free")
	return ""
}

// needRootNamespace skips (fails in CI) unless this process can bind port
// 53 and make a private mount namespace.
func needRootNamespace(t *testing.T) {
	t.Helper()
	unshare := needExecutable(t, "/usr/bin/unshare", "util-linux")
	if os.Geteuid() != 0 {
		missingPeer(t, "root", "dnsmasq on port 53 and `unshare -m` for the system resolver of dkimverify and libopendkim")
	}
	if out, err := exec.Command(unshare, "-m", "true").CombinedOutput(); err != nil {
		missingPeer(t, "unshare -m", fmt.Sprintf("%v: %s", err, out))
	}
}

// withResolver runs name args… with stdin in a private mount namespace
// whose /etc/resolv.conf is resolvConf, and returns its output and error.
func withResolver(resolvConf string, stdin []byte, name string, args ...string) (string, error) {
	argv := append([]string{"-m", "sh", "-c", `mount --bind "$1" /etc/resolv.conf && shift && exec "$@"`, "sh", resolvConf, name}, args...)
	cmd := exec.Command("/usr/bin/unshare", argv...)
	cmd.Stdin = strings.NewReader(string(stdin))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sigResult is one signature as dkimpy saw it.
type sigResult struct {
	D, S, A, H string
	OK         bool
	Err        string
}

// dkimpyVerify checks every signature of each file with dkimpy, keys from
// the DNS server at dnsAddr.
func dkimpyVerify(t *testing.T, dnsAddr string, files []string) map[string][]sigResult {
	t.Helper()
	py := needPythonModule(t, "dkim", "python3-dkim")
	needPythonModule(t, "dns.resolver", "python3-dnspython")
	host, port, _ := net.SplitHostPort(dnsAddr)
	out, err := exec.Command(py, append([]string{"testdata/dkim_verify.py", host, port}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dkim_verify.py: %v\n%s", err, out)
	}
	res := map[string][]sigResult{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var line struct {
			File string
			Sigs []sigResult
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("dkim_verify.py output %q: %v", sc.Text(), err)
		}
		res[line.File] = line.Sigs
	}
	return res
}

// headerValue returns the unfolded value of the first field named name in
// msg's header section, and whether there is one.
func headerValue(msg []byte, name string) (string, bool) {
	head, _, _ := strings.Cut(string(msg), "\r\n\r\n")
	head = strings.NewReplacer("\r\n ", " ", "\r\n\t", " ").Replace(head)
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// TestE2EDKIM: messages signed by bin/gannet with rsa-sha256 (the From
// domain's key) and ed25519-sha256 (the tenant's dkim_domain key), 8-bit
// and UTF-8, over SMTP and the HTTP API, verify after delivery with dkimpy,
// dkimverify and libopendkim against keys in DNS; meta headers are gone,
// Date and Message-ID were added, bulk mail of a tenant with
// list_unsubscribe has signed List-Unsubscribe and List-Unsubscribe-Post.
func TestE2EDKIM(t *testing.T) {
	gannetBinary(t)
	needRootNamespace(t)
	dkimverify := needExecutable(t, "/usr/bin/dkimverify", "python3-dkim")
	needExecutable(t, "/usr/sbin/opendkim-testmsg", "opendkim-tools") // libopendkim11 comes with it

	keys := t.TempDir()
	rsaKey := keygen(t, keys, "src.test", "gr1", "rsa")
	edKey := keygen(t, keys, "esp.test", "ge1", "ed25519")
	dnsIP := port53Address(t)
	dns := startDNSAt(t, dnsIP, 53, txtRecords(rsaKey, edKey)...)
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+dnsIP+"\noptions timeout:2 attempts:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	port := receiverPort(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{})
	// [meta] is left at its defaults: X-Tenant, X-Campaign, X-Type,
	// strip_meta_headers and add_missing_headers on.
	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, Extra: fmt.Sprintf(`
[[dkim]]
domain = "src.test"
selector = "gr1"
key_file = %q

[[dkim]]
domain = "esp.test"
selector = "ge1"
key_file = %q

[[tenant]]
name = "shop"
dkim_domain = "esp.test"
dkim_domains = ["src.test"]
list_unsubscribe = "https://esp.test/u/{id}"
`, rsaKey.file, edKey.file)})

	latin1Body := "Caf\xe9 cr\xe8me br\xfbl\xe9e \xa9\r\nna\xefve  \r\n"
	type tc struct {
		name, rcpt string
		mailOpts   []string
		data       string
		algos      []string // expected a= of the signatures, top first
		listUnsub  bool
	}
	cases := []tc{
		{name: "rsa 8-bit", rcpt: "rsa8@" + domain1, mailOpts: []string{"BODY=8BITMIME"},
			data: "From: <sender@src.test>\r\nTo: <rsa8@d1.test>\r\nSubject: latin-1\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + latin1Body,
			algos: []string{"rsa-sha256"}},
		{name: "rsa UTF-8", rcpt: "rsaütf@" + domain1, mailOpts: []string{"SMTPUTF8", "BODY=8BITMIME"},
			data: "From: Jörg <jörg@src.test>\r\nTo: <rsaütf@d1.test>\r\nSubject: Grüße aus Köln ✓\r\n" +
				"Date: Mon, 02 Jan 2026 15:04:05 +0000\r\nMessage-ID: <utf8-1@src.test>\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n\r\nÜnïcödé ✓\r\n",
			algos: []string{"rsa-sha256"}},
		{name: "ed25519 8-bit", rcpt: "ed8@" + domain1, mailOpts: []string{"BODY=8BITMIME"},
			data: "X-Tenant: shop\r\nFrom: <news@shop.test>\r\nTo: <ed8@d1.test>\r\nSubject: latin-1 via tenant\r\n" +
				"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n" + latin1Body,
			algos: []string{"ed25519-sha256"}},
		{name: "ed25519 UTF-8 campaign", rcpt: "edütf@" + domain1, mailOpts: []string{"SMTPUTF8", "BODY=8BITMIME"},
			data: "X-Tenant: shop\r\nX-Campaign: spring\r\nFrom: Tienda <nóticias@shop.test>\r\nTo: <edütf@d1.test>\r\n" +
				"Subject: ¡Rebajas! 日本語\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÑandú ✓\r\n",
			algos: []string{"ed25519-sha256"}, listUnsub: true},
	}
	var msgs []pyMessage
	for _, c := range cases {
		from := "sender@src.test"
		msgs = append(msgs, pyMessage{From: from, To: []string{c.rcpt}, MailOptions: c.mailOpts, Data: []byte(c.data)})
	}
	ids := map[string]string{} // rcpt → queue id
	for i, r := range smtplibSend(t, g.SMTPAddr, msgs) {
		ids[cases[i].rcpt] = acceptedID(t, r.Data)
	}

	// The HTTP API: a tenant's campaign message From the ESP-signed
	// customer domain (listed in the tenant's dkim_domains) gets both
	// signatures.
	curl := needExecutable(t, "/usr/bin/curl", "curl")
	req := `{"from":"app@src.test","to":["http@d1.test"],"subject":"Grüße über HTTP","text":"Hallo ✓\n",` +
		`"tenant":"shop","campaign":"summer"}`
	out, err := exec.Command(curl, "-sS", "-H", "Content-Type: application/json", "--data-binary", req,
		"http://"+g.HTTPAddr+"/v1/message").CombinedOutput()
	var ans struct{ ID string }
	if err != nil || json.Unmarshal(out, &ans) != nil || ans.ID == "" {
		t.Fatalf("curl inject: %v %s", err, out)
	}
	ids["http@"+domain1] = ans.ID
	cases = append(cases, tc{name: "HTTP API", rcpt: "http@" + domain1, algos: []string{"rsa-sha256", "ed25519-sha256"}, listUnsub: true})

	got := waitArrivals(t, rcv, len(cases), deliveryMax)
	var files []string
	byRcpt := map[string]*arrival{}
	for _, c := range cases {
		a := findArrival(got, c.rcpt)
		if a == nil {
			t.Fatalf("%s: not delivered", c.name)
		}
		byRcpt[c.rcpt] = a
		files = append(files, a.File)
	}
	results := dkimpyVerify(t, dns.Addr, files)

	for _, c := range cases {
		a := byRcpt[c.rcpt]
		id := ids[c.rcpt]
		sigs := results[a.File]
		var algos []string
		for _, s := range sigs {
			algos = append(algos, s.A)
			if !s.OK {
				t.Errorf("%s: dkimpy: signature d=%s a=%s fails: %s\n%s", c.name, s.D, s.A, s.Err, a.Data)
			}
			if h := strings.ReplaceAll(s.H, " ", ""); !strings.HasPrefix(strings.ToLower(h), "from:from:") ||
				strings.Contains(strings.ToLower(h), "received") || strings.Contains(strings.ToLower(h), "x-tenant") {
				t.Errorf("%s: h=%s: want From over-signed first, no Received or meta headers", c.name, s.H)
			}
			if c.listUnsub && !strings.Contains(strings.ToLower(s.H), "list-unsubscribe-post") {
				t.Errorf("%s: d=%s h=%s does not cover List-Unsubscribe-Post", c.name, s.D, s.H)
			}
		}
		if !slices.Equal(algos, c.algos) {
			t.Errorf("%s: signatures %v, want %v", c.name, algos, c.algos)
		}
		// dkimverify checks one signature per run (--index).
		for i := range sigs {
			if out, err := withResolver(resolvConf, a.Data, dkimverify, "--index", fmt.Sprint(i)); err != nil || !strings.Contains(out, "signature ok") {
				t.Errorf("%s: dkimverify --index %d: %v %s", c.name, i, err, out)
			}
		}
		if out, err := withResolver(resolvConf, a.Data, "/usr/bin/python3", "testdata/opendkim_verify.py"); err != nil || strings.TrimSpace(out) != "pass" {
			t.Errorf("%s: libopendkim: %v %s", c.name, err, out)
		}

		// Message edits.
		if strings.Contains(string(a.Data), "X-Tenant") || strings.Contains(string(a.Data), "X-Campaign") {
			t.Errorf("%s: meta headers not stripped:\n%s", c.name, a.Data)
		}
		if _, ok := headerValue(a.Data, "Date"); !ok {
			t.Errorf("%s: no Date", c.name)
		}
		if c.name == "rsa 8-bit" {
			if v, _ := headerValue(a.Data, "Message-ID"); v != "<"+id+"@relay.e2e.test>" {
				t.Errorf("%s: Message-ID %q, want <%s@relay.e2e.test>", c.name, v, id)
			}
		}
		lu, hasLU := headerValue(a.Data, "List-Unsubscribe")
		if c.listUnsub {
			if lu != "<https://esp.test/u/"+id+">" {
				t.Errorf("%s: List-Unsubscribe %q, want <https://esp.test/u/%s>", c.name, lu, id)
			}
			if v, _ := headerValue(a.Data, "List-Unsubscribe-Post"); v != "List-Unsubscribe=One-Click" {
				t.Errorf("%s: List-Unsubscribe-Post %q", c.name, v)
			}
		} else if hasLU {
			t.Errorf("%s: List-Unsubscribe on a message without campaign: %q", c.name, lu)
		}
		// Our Received field sits above the signatures, unsigned.
		if !strings.HasPrefix(string(a.Data), "Received:") {
			t.Errorf("%s: message does not start with our Received field", c.name)
		}
	}

	// The verifiers can fail: a changed Subject breaks every signature.
	a := byRcpt["http@"+domain1]
	bad := strings.Replace(string(a.Data), "Subject: ", "Subject: Re: ", 1)
	badFile := filepath.Join(t.TempDir(), "tampered.eml")
	os.WriteFile(badFile, []byte(bad), 0o600)
	for _, s := range dkimpyVerify(t, dns.Addr, []string{badFile})[badFile] {
		if s.OK {
			t.Errorf("dkimpy accepts a tampered message (d=%s)", s.D)
		}
	}
	if out, err := withResolver(resolvConf, []byte(bad), "/usr/bin/python3", "testdata/opendkim_verify.py"); err == nil {
		t.Errorf("libopendkim accepts a tampered message: %s", out)
	}
	if out, err := withResolver(resolvConf, []byte(bad), dkimverify); err == nil {
		t.Errorf("dkimverify accepts a tampered message: %s", out)
	}
}
