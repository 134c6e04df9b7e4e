// Package e2e holds Gannet's end-to-end tests with real peers.
//
// The harness builds cmd/gannet once per run (or uses $GANNET_BIN), then each
// test starts its own world on loopback and stops it at its end:
//
//	client (swaks, smtplib, smtp-source, Go) ──▶ gannet serve -config <tmp>/gannet.toml
//	                                                   │ MX lookups: dnsmasq on 127.0.0.1:<port>
//	                                                   ▼
//	      receivers on 127.0.0.2/.3/.4:<smtp_port> (smtp-sink, aiosmtpd, bin/smtpsink)
//
// The zone served by dnsmasq maps d1.test, d2.test and d3.test to MX hosts on
// 127.0.0.2, 127.0.0.3 and 127.0.0.4; nullmx.test publishes a null MX (RFC 7505);
// every other name under .test is NXDOMAIN. Because [delivery] smtp_port is one
// port for all MX hosts, the receivers of one test share a port number and differ
// by address.
//
// Tests assert what a user of a relay would check: the SMTP reply
// ("250 2.0.0 OK id=<ID>"), what arrived at the receiver byte for byte (after
// removing the one Received header Gannet prepends), and the JSON log records
// (KumoMTA field names) under [log] path.
//
// Peers are Debian packages (scripts/install-test-peers.sh). A missing peer skips
// the test loudly; with CI=true it fails it. Tests that need a working relay skip
// when bin/gannet cannot be built or when GANNET_E2E_PENDING=1 is set.
//
// Run:
//
//	go test ./e2e/                       # everything
//	go test ./e2e/ -run TestHarness      # only the peers and the harness
//	go test ./e2e/ -run TestHostile      # the hostile-client probes (issue #15)
//	GANNET_BIN=bin/gannet go test ./e2e/ # use a prebuilt binary
package e2e
