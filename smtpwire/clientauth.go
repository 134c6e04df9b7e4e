package smtpwire

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// Errors of ClientAuth.
var (
	// ErrNoAuthMechanism: the server offers neither AUTH PLAIN nor AUTH
	// LOGIN (or no AUTH at all) in its EHLO reply; Begin sends nothing.
	ErrNoAuthMechanism = errors.New("smtpwire: the server offers neither AUTH PLAIN nor AUTH LOGIN")
	// ErrAuthProtocol: the server answered an AUTH exchange with a reply
	// that does not fit it (a 334 after the last response, a 2xx before
	// it, a challenge that is not base64).
	ErrAuthProtocol = errors.New("smtpwire: unexpected reply in the AUTH exchange")
)

// AuthError is the server's refusal of an AUTH exchange (RFC 4954 §6):
// 535 5.7.8 for bad credentials, 454 4.7.0 for a temporary failure, 534
// 5.7.9 for a mechanism too weak, 538 5.7.11 when encryption is required.
// The host decides what it means for its mail: a smarthost that refuses
// the relay's credentials is a configuration problem, retried later.
type AuthError struct {
	Mechanism string
	Reply     Reply
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("AUTH %s refused: %s", e.Mechanism, e.Reply.String())
}

// ClientAuth is the client side of SMTP AUTH (RFC 4954) with no I/O, for
// the mechanisms a relay needs to log in to a smarthost: PLAIN (RFC 4616),
// sent with its initial response, preferred; LOGIN (the
// draft-murchison-sasl-login mechanism) when the server offers only that.
// The host writes what Next returns and feeds the server's reply to
// Feed, until Feed says done:
//
//	mech, err := a.Begin(&ext, user, password)
//	for {
//		write(a.Next(nil))
//		done, err := a.Feed(readReply())
//		if done || err != nil { break }
//	}
//
// A ClientAuth holds the password until the exchange ends; Begin on the
// next session forgets the last one.
type ClientAuth struct {
	mech string
	user string
	pass string
	step uint8 // responses sent so far
	done bool
}

// ChooseAuthMechanism returns the mechanism a client uses with a server
// that advertised ext: "PLAIN" when offered, else "LOGIN", else "".
func ChooseAuthMechanism(ext *Extensions) string {
	login := false
	for _, m := range ext.Auth {
		switch m {
		case "PLAIN":
			return "PLAIN"
		case "LOGIN":
			login = true
		}
	}
	if login {
		return "LOGIN"
	}
	return ""
}

// Begin starts an exchange with a server that advertised ext and returns
// the mechanism chosen; ErrNoAuthMechanism when it offers none Gannet
// speaks.
func (a *ClientAuth) Begin(ext *Extensions, user, pass string) (string, error) {
	*a = ClientAuth{}
	mech := ChooseAuthMechanism(ext)
	if mech == "" {
		return "", ErrNoAuthMechanism
	}
	*a = ClientAuth{mech: mech, user: user, pass: pass}
	return mech, nil
}

// Next appends to dst the line the client writes now: the AUTH command,
// then each response to a 334 challenge. It appends nothing once done.
func (a *ClientAuth) Next(dst []byte) []byte {
	if a.done || a.mech == "" {
		return dst
	}
	switch {
	case a.mech == "PLAIN":
		// RFC 4954 §4: the initial response saves a round trip; RFC 4616
		// §2: message = [authzid] NUL authcid NUL passwd.
		return AppendAuthPlain(dst, a.user, a.pass)
	case a.step == 0:
		return append(dst, "AUTH LOGIN\r\n"...)
	case a.step == 1:
		return appendBase64Line(dst, a.user)
	default:
		return appendBase64Line(dst, a.pass)
	}
}

func appendBase64Line(dst []byte, s string) []byte {
	dst = base64.StdEncoding.AppendEncode(dst, []byte(s))
	return append(dst, '\r', '\n')
}

// Feed takes the server's reply to the line Next gave. done: the exchange
// has ended, with err nil on success (235, RFC 4954 §4) or an *AuthError
// for a refusal (4xx, 5xx); ErrAuthProtocol for a reply that does not fit.
// Not done: call Next for the response to the 334 challenge.
func (a *ClientAuth) Feed(r Reply) (done bool, err error) {
	if a.done || a.mech == "" {
		return true, ErrAuthProtocol
	}
	a.step++
	last := a.mech == "PLAIN" || a.step == 3
	switch {
	case r.Code == 235:
		a.finish()
		return true, nil
	case r.Code == 334 && !last:
		// The LOGIN challenges are "Username:" and "Password:" in base64;
		// they are answered in order whatever their text.
		return false, nil
	case r.Transient() || r.Permanent():
		a.finish()
		return true, &AuthError{Mechanism: a.mech, Reply: r}
	}
	a.finish()
	return true, fmt.Errorf("%w: %d after %d response(s) to AUTH %s", ErrAuthProtocol, r.Code, a.step, a.mech)
}

// finish forgets the credentials.
func (a *ClientAuth) finish() {
	a.done = true
	a.user, a.pass = "", ""
}
