package main

import (
	"fmt"
	"io"
	"strings"

	"gannet/engine/dkim"
)

// cmdDKIMKeygen is "gannet dkim-keygen -domain D -selector S -algo rsa|ed25519
// [-bits N] -out DIR": it writes DIR/<selector>._domainkey.<domain>.pem
// (mode 0600, never over an existing file), prints the DNS TXT record to
// publish on stdout (one zone-file line, so scripts can take it as is) and
// the matching [[dkim]] config entry on stderr.
func cmdDKIMKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dkim-keygen", "dkim-keygen -domain D -selector S [-algo rsa|ed25519] [-bits N] [-out DIR]", stderr)
	domain := fs.String("domain", "", "signing `domain` (d=)")
	selector := fs.String("selector", "", "key `selector` (s=)")
	algo := fs.String("algo", "rsa", "key algorithm: rsa or ed25519")
	bits := fs.Int("bits", 0, "RSA key size in bits (default 2048, at least 2048)")
	out := fs.String("out", ".", "`directory` to write the key file to")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 || *domain == "" || *selector == "" {
		fmt.Fprintln(stderr, "gannet dkim-keygen: -domain and -selector are required")
		fs.Usage()
		return 2
	}
	file, record, err := dkim.Keygen(dkim.KeygenOptions{
		Dir: *out, Domain: *domain, Selector: *selector, Algo: *algo, Bits: *bits,
	})
	if err != nil {
		fmt.Fprintln(stderr, "gannet dkim-keygen:", err)
		return 1
	}
	fmt.Fprintln(stdout, record)
	fmt.Fprintf(stderr, "gannet dkim-keygen: wrote %s\n\nPublish the TXT record above in DNS, then add to the config:\n\n"+
		"[[dkim]]\ndomain = %q\nselector = %q\nkey_file = %q\n",
		file, strings.ToLower(strings.TrimSuffix(*domain, ".")), *selector, file)
	return 0
}
