package bounce

import "testing"

func TestParseEnhanced(t *testing.T) {
	good := map[string][3]int{"5.1.1": {5, 1, 1}, "4.7.650": {4, 7, 650}, "2.0.0": {2, 0, 0}, "5.1.10": {5, 1, 10}}
	for s, want := range good {
		c, sub, d, ok := parseEnhanced(s)
		if !ok || [3]int{c, sub, d} != want {
			t.Errorf("parseEnhanced(%q) = %d %d %d %v", s, c, sub, d, ok)
		}
	}
	for _, s := range []string{"", "5", "5.1", "5.1.", "3.1.1", "5.1.1.", "5.1.1 ", "5.1234.1", "5.1.1234", "5..1", "a.b.c", "5.1.x"} {
		if _, _, _, ok := parseEnhanced(s); ok {
			t.Errorf("parseEnhanced(%q) accepted", s)
		}
	}
}

// TestFallbackWithoutRules checks the status-code fallbacks alone.
func TestFallbackWithoutRules(t *testing.T) {
	tests := []struct {
		code int
		enh  string
		want Class
	}{
		{550, "5.1.1", InvalidRecipient},
		{550, "5.1.3", InvalidRecipient},
		{550, "5.1.6", InactiveMailbox},
		{553, "5.1.8", InvalidSender},
		{556, "5.1.10", BadDomain},
		{554, "5.2.3", QuotaIssues},
		{452, "4.3.1", QuotaIssues},
		{451, "4.4.3", DNSFailure},
		{550, "5.4.6", RoutingErrors},
		{501, "5.5.2", ProtocolErrors},
		{550, "5.7.17", InvalidRecipient},
		{550, "5.7.18", BadDomain},
		{550, "5.7.27", InvalidSender},
		{550, "5.7.29", AuthenticationFailed},
		{550, "5.7.0", PolicyRelated},
		{421, "4.7.0", PolicyRelated},
		{556, "5.7.1", BadDomain},
		{550, "2.1.1", Uncategorized},
		{421, "", TransientFailure},
		{0, "4.4.7", MessageExpired},
	}
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		if got := c.Classify(tc.code, tc.enh, "text"); got != tc.want {
			t.Errorf("Classify(%d, %q) without rules = %s, want %s", tc.code, tc.enh, got, tc.want)
		}
	}
}
