package resolver

import (
	"errors"
	"fmt"
	"testing"

	"gannet/smtpwire"
)

func TestErrorIsErrorsAsFriendly(t *testing.T) {
	cause := fmt.Errorf("query: %w", ErrServerFailure)
	var err error = fmt.Errorf("delivery: %w", transientError("a.test", cause))
	var re *smtpwire.Error
	if !errors.As(err, &re) {
		t.Fatal("errors.As does not find *smtpwire.Error")
	}
	if re.Permanent() || !re.Temporary() || re.Reply.Code != 451 || re.Reply.Enhanced != "4.4.3" {
		t.Fatalf("got %+v", re)
	}
	if !errors.Is(err, ErrServerFailure) {
		t.Fatal("errors.Is does not reach the cause")
	}
	if got := re.Error(); got != "451 4.4.3 temporary DNS failure: a.test: query: DNS server failure (SERVFAIL)" {
		t.Fatalf("Error() = %q", got)
	}
	n := nullMXError("b.test")
	if !n.Permanent() || n.Error() != "556 5.1.10 domain does not accept mail: b.test: domain accepts no mail (null MX, RFC 7505)" {
		t.Fatalf("null MX error %q", n)
	}
	if got := noSuchDomainError("c.test", nil).Error(); got != "550 5.1.2 destination domain does not exist: c.test" {
		t.Fatalf("Error() without cause = %q", got)
	}
}
