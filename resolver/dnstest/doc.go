// Package dnstest provides real DNS servers for Go tests: an in-process
// authoritative server built on github.com/miekg/dns that serves zones given
// as RFC 1035 master file text, and a launcher for dnsmasq.
//
// The in-process Server listens on 127.0.0.1 at a free port over UDP and TCP
// (dns.Server with a PacketConn and a Listener). It answers like an
// authoritative server (RFC 1034 §4.3.2): records of the asked type, CNAME
// chains inside its data, NXDOMAIN for names that do not exist and NODATA for
// names without the type, both with the zone's SOA in the authority section
// so that resolvers can cache them (RFC 2308 §3), and REFUSED outside its
// zones. It truncates UDP answers to 512 bytes or to the query's EDNS0
// payload size (RFC 6891 §7), setting TC so that clients retry over TCP.
// Per name, a test can make it answer SERVFAIL or any RCODE (Fail,
// SetRcode), never answer (Hang), answer late (Delay) or answer only over
// TCP (Truncate); Heal undoes that. It logs every question (Queries,
// QueryCount), so a test can check what a resolver asked and over which
// transport, for example that a cached answer caused no query.
//
//	srv := dnstest.NewServer(t, `
//	$ORIGIN a.test.
//	@    300 IN SOA ns hostmaster 1 3600 600 86400 60
//	@    300 IN MX  10 mx1
//	mx1  300 IN A   127.0.0.2
//	`)
//	r, _ := resolver.New(resolver.Config{Nameservers: []string{srv.Addr}})
//
// StartDnsmasq runs /usr/sbin/dnsmasq (Debian dnsmasq-base) on a free
// loopback port with no configuration file, hosts file or upstream, for tests
// that want a second, independent DNS implementation; the test's cleanup
// stops it.
package dnstest
