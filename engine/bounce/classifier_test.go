package bounce

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestClassifyCommonReplies pins the classes of well-known replies, written
// the way the big providers and the usual MTAs word them.
func TestClassifyCommonReplies(t *testing.T) {
	c := Default()
	tests := []struct {
		code int
		enh  string
		text string
		want Class
	}{
		{421, "4.7.0", "Try again later, closing connection.", TransientFailure},
		{550, "5.1.1", "user unknown", InvalidRecipient},
		{550, "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos.", InvalidRecipient},
		{552, "5.2.2", "mailbox full", QuotaIssues},
		{452, "4.2.2", "The email account that you tried to reach is over quota.", QuotaIssues},
		{554, "5.7.1", "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", SpamBlock},
		{421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.", SpamBlock},
		{550, "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy.", AuthenticationFailed},
		{550, "5.7.1", "Our system has detected that this message is likely unsolicited mail.", SpamContent},
		{451, "4.7.1", "Greylisting in action, please come back later", TransientFailure},
		{554, "5.7.1", "<a@example.com>: Relay access denied", RelayDenied},
		{452, "4.5.3", "Too many recipients", TooManyRecipients},
		{550, "5.4.1", "Recipient address rejected: Access denied. AS(201806281)", InvalidRecipient},
		{550, "5.7.606", "Access denied, banned sending IP [192.0.2.1].", SpamBlock},
		{421, "4.7.0", "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints", SpamBlock},
		{451, "4.7.650", "The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.", SpamBlock},
		{554, "5.7.9", "Message not accepted for policy reasons.", PolicyRelated},
		{550, "5.7.515", "Access denied, sending domain [EXAMPLE.COM] doesn't meet the required authentication level.", AuthenticationFailed},
		{550, "5.2.1", "The email account that you tried to reach is disabled.", InactiveMailbox},
		{450, "4.1.8", "<a@example.com>: Sender address rejected: Domain not found", InvalidSender},
		{550, "5.7.1", "Message rejected as spam by Content Filtering.", SpamContent},
		{552, "5.3.4", "Message size exceeds fixed limit", QuotaIssues},
		{421, "4.4.2", "Connection dropped", BadConnection},
		{0, "", "connect to mx.example.com[192.0.2.1]:25: Connection timed out", NoAnswerFromHost},
		{535, "5.7.8", "Authentication credentials invalid", AuthenticationFailed},
		{530, "5.7.0", "Must issue a STARTTLS command first", PolicyRelated},
		{421, "4.3.2", "Service shutting down", TransientFailure},
		// Gannet's own resolver failures (resolver/errors.go).
		{451, "4.4.3", "temporary DNS failure: example.test", DNSFailure},
		{550, "5.1.2", "destination domain does not exist: example.test", BadDomain},
		{556, "5.1.10", "domain does not accept mail: example.test", BadDomain},
		{550, "5.4.4", "unable to route to domain: example.test", RoutingErrors},
		// Fallbacks: nothing in the text, the status codes decide.
		{550, "5.1.1", "nope", InvalidRecipient},
		{550, "5.1.2", "nope", BadDomain},
		{550, "5.2.1", "nope", InactiveMailbox},
		{552, "5.2.2", "nope", QuotaIssues},
		{552, "4.2.2", "nope", QuotaIssues},
		{451, "4.4.1", "nope", NoAnswerFromHost},
		{421, "4.4.2", "nope", BadConnection},
		{451, "4.4.5", "nope", TransientFailure},
		{554, "5.4.7", "nope", MessageExpired},
		{550, "5.7.1", "nope", PolicyRelated},
		{550, "5.7.25", "nope", PolicyRelated},
		{550, "5.7.23", "nope", AuthenticationFailed},
		{550, "5.7.28", "nope", SpamBlock},
		{525, "5.7.13", "nope", InactiveMailbox},
		{550, "5.6.0", "nope", ContentRelated},
		{554, "5.5.3", "nope", TooManyRecipients},
		{521, "5.3.2", "nope", BadDomain},
		{451, "", "nope", TransientFailure},
		{450, "4.0.0", "nope", TransientFailure},
		{552, "", "nope", QuotaIssues},
		{550, "", "nope", Uncategorized},
		{554, "5.0.0", "nope", Uncategorized},
		{0, "", "", Uncategorized},
		// Not failures.
		{250, "2.0.0", "OK mailbox full", Uncategorized},
		{354, "", "End data with <CR><LF>.<CR><LF>", Uncategorized},
		// A malformed enhanced code is ignored, not trusted.
		{550, "5.1", "nope", Uncategorized},
		{550, "9.1.1", "nope", Uncategorized},
	}
	for _, tc := range tests {
		if got := c.Classify(tc.code, tc.enh, tc.text); got != tc.want {
			t.Errorf("Classify(%d, %q, %q) = %s, want %s", tc.code, tc.enh, tc.text, got, tc.want)
		}
	}
}

// TestClassifyLines checks that a multi-line reply is classified as its
// lines joined, and that a match may span lines.
func TestClassifyLines(t *testing.T) {
	c := Default()
	lines := []string{"The email account that you tried to reach is", "disabled. Learn more at", "https://support.google.com/mail/?p=DisabledUser"}
	if got := c.ClassifyLines(550, "5.2.1", lines); got != InactiveMailbox {
		t.Errorf("ClassifyLines = %s, want InactiveMailbox", got)
	}
	if got, want := c.ClassifyLines(550, "5.2.1", lines), c.Classify(550, "5.2.1", strings.Join(lines, "\n")); got != want {
		t.Errorf("ClassifyLines = %s, Classify of joined text = %s", got, want)
	}
	long := []string{strings.Repeat("x", MaxText), "user unknown"}
	if got := c.ClassifyLines(550, "", long); got != Uncategorized {
		t.Errorf("text past MaxText was classified: %s", got)
	}
}

// TestRuleOrder checks first-match-wins and that a rule can match the code
// and enhanced code at the start of the subject line.
func TestRuleOrder(t *testing.T) {
	c, err := New([]Rule{
		{Class: SpamBlock, Pattern: `^550 5\.7\.1 `},
		{Class: PolicyRelated, Pattern: `denied`},
		{Class: InvalidRecipient, Pattern: `(?-i)User`},
		{Class: RelayDenied, Pattern: `^000 `},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		code int
		enh  string
		text string
		want Class
	}{
		{550, "5.7.1", "access denied", SpamBlock},
		{554, "5.7.1", "access DENIED", PolicyRelated},
		{550, "", "User gone", InvalidRecipient},
		{550, "", "user gone", Uncategorized},
		{0, "", "anything", RelayDenied},
		{1000, "", "anything", RelayDenied},
	}
	for _, tc := range tests {
		if got := c.Classify(tc.code, tc.enh, tc.text); got != tc.want {
			t.Errorf("Classify(%d, %q, %q) = %s, want %s", tc.code, tc.enh, tc.text, got, tc.want)
		}
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	if _, err := New([]Rule{{Class: SpamBlock, Pattern: `(`}}); err == nil {
		t.Error("New accepted an invalid pattern")
	}
	if _, err := New([]Rule{{Class: numClasses, Pattern: `x`}}); err == nil {
		t.Error("New accepted an invalid class")
	}
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Classify(550, "5.1.1", "whatever"); got != InvalidRecipient {
		t.Errorf("New(nil) without fallback: %s", got)
	}
}

// TestPrefilterAgrees checks, over the real replies, that the literal
// prefilter picks the same first rule as trying every rule in order.
func TestPrefilterAgrees(t *testing.T) {
	dir := testdataDir(t, "bounces/sisimai")
	c := Default()
	for _, row := range readTSV(t, filepath.Join(dir, "smtp-replies-labeled.tsv")) {
		code, _ := strconv.Atoi(row["reply_code"])
		checkPrefilter(t, c, code, row["dsn_status"], row["diagnostic_code"])
	}
}

func checkPrefilter(t *testing.T, c *Classifier, code int, enh, text string) {
	t.Helper()
	s := c.scratch.Get().(*scratch)
	defer c.scratch.Put(s)
	s.subject = appendText(appendHead(s.subject[:0], code, enh), text)
	fast := c.firstMatch(s)
	slow := c.firstMatchSlow(s.subject)
	if fast != slow {
		t.Fatalf("subject %q: prefilter chose rule %d, in-order scan rule %d", s.subject, fast, slow)
	}
}

// TestPrefilterCoverage reports how many default rules have a literal and
// fails if too many must run on every reply.
func TestPrefilterCoverage(t *testing.T) {
	c := Default()
	always := 0
	for _, r := range c.rules {
		if len(r.needs) == 0 {
			always++
			t.Logf("rule without a required literal: %s", r.re)
		}
	}
	t.Logf("%d rules, %d rules without a required literal", len(c.rules), always)
	if always > 3 {
		t.Errorf("%d rules have no required literal; the prefilter is not doing its job", always)
	}
}

// BenchmarkClassify classifies each of the 622 real replies in turn; ns/op
// is per reply.
func BenchmarkClassify(b *testing.B) {
	dir := testdataDir(b, "bounces/sisimai")
	type reply struct {
		code      int
		enh, text string
	}
	var replies []reply
	for _, row := range readTSV(b, filepath.Join(dir, "smtp-replies-labeled.tsv")) {
		code, _ := strconv.Atoi(row["reply_code"])
		replies = append(replies, reply{code, row["dsn_status"], row["diagnostic_code"]})
	}
	c := Default()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := replies[i%len(replies)]
		c.Classify(r.code, r.enh, r.text)
	}
}

// BenchmarkClassifyNoPrefilter is the same work trying every rule in order,
// to show what the prefilter saves.
func BenchmarkClassifyNoPrefilter(b *testing.B) {
	dir := testdataDir(b, "bounces/sisimai")
	var subjects [][]byte
	for _, row := range readTSV(b, filepath.Join(dir, "smtp-replies-labeled.tsv")) {
		code, _ := strconv.Atoi(row["reply_code"])
		subjects = append(subjects, appendText(appendHead(nil, code, row["dsn_status"]), row["diagnostic_code"]))
	}
	c := Default()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.firstMatchSlow(subjects[i%len(subjects)])
	}
}

func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Default()
	}
}

// TestConcurrentClassify shares one classifier between goroutines (run
// with -race).
func TestConcurrentClassify(t *testing.T) {
	c := Default()
	done := make(chan Class)
	for i := 0; i < 4; i++ {
		go func() {
			var last Class
			for j := 0; j < 200; j++ {
				last = c.Classify(550, "5.1.1", "<a@example.com>: Recipient address rejected: User unknown")
			}
			done <- last
		}()
	}
	for i := 0; i < 4; i++ {
		if got := <-done; got != InvalidRecipient {
			t.Errorf("got %s", got)
		}
	}
}
