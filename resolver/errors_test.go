package resolver

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorIsErrorsAsFriendly(t *testing.T) {
	cause := fmt.Errorf("query: %w", ErrServerFailure)
	var err error = fmt.Errorf("delivery: %w", transientError("a.test", cause))
	var re *Error
	if !errors.As(err, &re) {
		t.Fatal("errors.As does not find *Error")
	}
	if re.Permanent() || !re.Temporary() || re.Code != 451 || re.Enhanced != "4.4.3" {
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
	if got := (&Error{Domain: "c.test", Code: 550, Enhanced: "5.1.2", Message: "m"}).Error(); got != "550 5.1.2 m: c.test" {
		t.Fatalf("Error() without cause = %q", got)
	}
}
