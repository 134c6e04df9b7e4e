package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// packagedHeader opens /etc/gannet/gannet.toml in the package.
const packagedHeader = `# /etc/gannet/gannet.toml — installed by the gannet Debian package.
#
# This is the built-in configuration (gannet config default) with the spool
# and the logs under /var/lib/gannet, the directory the service may write
# (deploy/systemd/gannet.service: ProtectSystem=strict, ReadWritePaths).
# It listens on 127.0.0.1 only: SMTP on 2525, HTTP (inject, admin, /metrics)
# on 8000. To take mail from other hosts, change listen and relay_hosts (and
# set tls_cert/tls_key); port 25 works as the gannet user (the unit grants
# CAP_NET_BIND_SERVICE).
#
# Delivery: mail goes to the recipients' MX hosts on the Internet, looked up
# through the system resolver (/etc/resolv.conf). Set [resolver] nameservers
# to use other DNS servers, or [delivery] relay_to to send everything to one
# smarthost.
#
# After a change: gannet check-config -config /etc/gannet/gannet.toml, then
# systemctl reload gannet. dpkg keeps your edits on upgrade (a conffile).
#
`

// packagedReplacements are the lines of the default config the package
// changes; each must be found exactly once.
var packagedReplacements = []struct{ old, new string }{
	{`path = "./data/spool"`, `path = "/var/lib/gannet/spool"`},
	{`path = "./data/logs"`, `path = "/var/lib/gannet/logs"`},
}

// listenLine matches an active (uncommented) listen key.
var listenLine = regexp.MustCompile(`(?m)^\s*listen\s*=\s*"([^"]*)"`)

// packagedConfig turns the output of `gannet config default` into the
// packaged /etc/gannet/gannet.toml. It fails when the default no longer has
// the lines it changes, or listens anywhere but on loopback.
func packagedConfig(def []byte) ([]byte, error) {
	out := def
	for _, r := range packagedReplacements {
		if n := bytes.Count(out, []byte(r.old)); n != 1 {
			return nil, fmt.Errorf("the default config has %d lines %s, want 1", n, r.old)
		}
		out = bytes.Replace(out, []byte(r.old), []byte(r.new), 1)
	}
	if bytes.Contains(out, []byte("./data")) {
		return nil, fmt.Errorf("the default config still names ./data after the packaged paths are set")
	}
	m := listenLine.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return nil, fmt.Errorf("the default config has no listener")
	}
	for _, l := range m {
		a := string(l[1])
		if !strings.HasPrefix(a, "127.0.0.1:") && !strings.HasPrefix(a, "[::1]:") {
			return nil, fmt.Errorf("the default config listens on %s, not on loopback", a)
		}
	}
	return append([]byte(packagedHeader), out...), nil
}
