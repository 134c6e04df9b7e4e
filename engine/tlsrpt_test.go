package engine

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"gannet/engine/outbound"
	"gannet/engine/tlsrpt"
)

// TestReportSessionDANE: a session under DANE is counted under policy type
// "tlsa" with the host's TLSA records as policy-string, the MX host as
// mx-host and the destination as policy domain, with its DANE result type.
func TestReportSessionDANE(t *testing.T) {
	s := outbound.TLSSession{
		Domain: "dane.test", DANE: true, TLSA: []string{"3 1 1 abcd"}, Host: "MX1.dane.test.",
		Peer: netip.MustParseAddrPort("198.51.100.1:25"), Local: netip.MustParseAddr("192.0.2.1"),
		ResultType: tlsrpt.ResultTLSAInvalid, Err: errors.New("no TLSA record matches the certificate of mx1.dane.test"),
	}
	ss := reportSession(s)
	if ss.PolicyType != tlsrpt.PolicyTLSA || ss.Domain != "dane.test" || !slices.Equal(ss.PolicyString, []string{"3 1 1 abcd"}) ||
		!slices.Equal(ss.MXHost, []string{"mx1.dane.test"}) || ss.ResultType != tlsrpt.ResultTLSAInvalid ||
		ss.ReceivingIP != s.Peer.Addr() || ss.SendingIP != s.Local || ss.ReasonCode == "" {
		t.Errorf("DANE session counted as %+v", ss)
	}
	s.ResultType, s.Err = "", nil
	if ss = reportSession(s); ss.PolicyType != tlsrpt.PolicyTLSA || ss.ResultType != "" || ss.ReasonCode != "" {
		t.Errorf("DANE success counted as %+v", ss)
	}
	if ss = reportSession(outbound.TLSSession{Domain: "plain.test", Host: "mx.plain.test"}); ss.PolicyType != tlsrpt.PolicyNoPolicyFound || ss.PolicyString != nil {
		t.Errorf("session without a policy counted as %+v", ss)
	}
}
