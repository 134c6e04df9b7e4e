package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gannet/engine/trace"
	"gannet/smtpwire"
)

// RelayTLS is how a connection to the smarthost (relay_to) uses TLS
// ([delivery] relay_tls).
type RelayTLS uint8

const (
	// RelayStartTLS: STARTTLS (RFC 3207) as the [tls] mode says; with
	// credentials (and without AllowInsecureAuth) it is required and the
	// certificate verified, whatever the mode. The default.
	RelayStartTLS RelayTLS = iota
	// RelayImplicitTLS: TLS from the first byte (RFC 8314 §3.3, port 465).
	RelayImplicitTLS
	// RelayNoTLS: never TLS.
	RelayNoTLS
)

// ParseRelayTLS parses the config spelling: "starttls" (or ""),
// "implicit", "none".
func ParseRelayTLS(s string) (RelayTLS, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "starttls":
		return RelayStartTLS, nil
	case "implicit":
		return RelayImplicitTLS, nil
	case "none":
		return RelayNoTLS, nil
	}
	return 0, fmt.Errorf("unknown relay_tls %q (want starttls, implicit or none)", s)
}

// String returns the config spelling.
func (r RelayTLS) String() string {
	switch r {
	case RelayStartTLS:
		return "starttls"
	case RelayImplicitTLS:
		return "implicit"
	case RelayNoTLS:
		return "none"
	}
	return fmt.Sprintf("RelayTLS(%d)", uint8(r))
}

// RelayAuth is the smarthost's TLS and login ([delivery] relay_tls,
// relay_user, relay_password, relay_allow_insecure_auth).
type RelayAuth struct {
	TLS RelayTLS
	// User and Password log in with AUTH PLAIN, or LOGIN when the
	// smarthost offers only that (RFC 4954); no User: no AUTH.
	User     string
	Password string
	// AllowInsecureAuth sends the credentials over a connection without
	// TLS or whose certificate was not verified. Without it such a
	// connection is not used (451 4.7.10).
	AllowInsecureAuth bool
}

// relayDial returns the dial configuration for a new connection to the
// smarthost: base with the TLS and login of ra.
func relayDial(base *dialConfig, ra RelayAuth) *dialConfig {
	d := *base
	d.auth = nil
	switch ra.TLS {
	case RelayNoTLS:
		d.tls.Mode = TLSDisabled
	case RelayImplicitTLS:
		d.implicitTLS = true
	}
	if ra.User != "" {
		a := ra
		d.auth = &a
		if !ra.AllowInsecureAuth && ra.TLS == RelayStartTLS {
			// Credentials go only over verified TLS: no fallback to the
			// clear, no unchecked certificate.
			d.tls.Mode = TLSRequired
			d.tls.FallbackPlaintext = false
		}
	}
	d.policyName = policyName(d.tls.Mode, STSNone)
	return &d
}

// verifiedTLS reports whether the session runs over TLS whose certificate
// was verified.
func (c *Client) verifiedTLS() bool {
	return c.tls != nil && c.cfg.tls.Mode != TLSOpportunisticInsecure && !c.cfg.tls.skipVerify
}

// implicitHandshake starts TLS on a new connection before the greeting
// (RFC 8314 §3.3).
func (c *Client) implicitHandshake(ctx context.Context) *sessionError {
	if err := c.handshake(ctx); err != nil {
		return &sessionError{stage: "TLS", refusal: smtpwire.Error{Reply: localReply(451, "4.7.10",
			fmt.Sprintf("TLS handshake with %s [%s] failed: %s", c.host, c.peer, errText(err))), Cause: err}}
	}
	return nil
}

// errInsecureAuth: the smarthost session is not over verified TLS and
// relay_allow_insecure_auth is not set.
var errInsecureAuth = errors.New("credentials are sent only over verified TLS")

// login authenticates with the smarthost (RFC 4954) after EHLO (and TLS).
// A refusal is transient, for the smarthost or its accounts may be fixed:
// the message is retried and bounces after max_retry_age.
func (c *Client) login() *sessionError {
	a := c.cfg.auth
	if !c.verifiedTLS() && !a.AllowInsecureAuth {
		c.quitQuietly()
		return &sessionError{stage: "AUTH", refusal: smtpwire.Error{Reply: localReply(451, "4.7.10",
			fmt.Sprintf("not sending relay_user credentials to %s [%s] without verified TLS (relay_allow_insecure_auth = true allows it)", c.host, c.peer)),
			Cause: errInsecureAuth}}
	}
	var ca smtpwire.ClientAuth
	if _, err := ca.Begin(&c.ext, a.User, a.Password); err != nil {
		c.quitQuietly()
		return &sessionError{stage: "AUTH", refusal: smtpwire.Error{Reply: localReply(451, "4.7.0",
			fmt.Sprintf("smarthost %s [%s] offers no AUTH mechanism Gannet speaks (PLAIN, LOGIN); it offers %q", c.host, c.peer, strings.Join(c.ext.Auth, " "))),
			Cause: err}}
	}
	c.conn.SetDeadline(time.Now().Add(c.cfg.commandTimeout))
	for {
		line := ca.Next(c.scratch[:0])
		c.traceSecret(line)
		rep, err := c.roundTripQuiet(line)
		if err != nil {
			return c.ioError("AUTH", err)
		}
		done, err := ca.Feed(rep)
		if !done {
			continue
		}
		if err == nil {
			return nil
		}
		c.quitQuietly()
		if c.cfg.onAuthFailure != nil {
			c.cfg.onAuthFailure(c.host, c.peer.String(), a.User, rep)
		}
		return &sessionError{stage: "AUTH", server: rep, refusal: smtpwire.Error{Reply: localReply(451, "4.7.0",
			fmt.Sprintf("smarthost %s [%s] refused the credentials of relay_user %q: %s", c.host, c.peer, a.User, rep.String())),
			Cause: err}}
	}
}

// traceSecret traces an AUTH line without its credentials.
func (c *Client) traceSecret(line []byte) {
	if c.traceID == 0 {
		return
	}
	s := string(line)
	if strings.HasPrefix(s, "AUTH ") {
		f := strings.Fields(s)
		if len(f) > 2 {
			s = f[0] + " " + f[1] + " (elided)"
		}
		c.publish(trace.Command, strings.TrimRight(s, "\r\n"))
		return
	}
	c.publish(trace.Command, "(AUTH response elided)")
}

// roundTripQuiet is roundTrip without tracing the command.
func (c *Client) roundTripQuiet(cmd []byte) (smtpwire.Reply, error) {
	if _, err := c.w.Write(cmd); err != nil {
		return smtpwire.Reply{}, err
	}
	if err := c.w.Flush(); err != nil {
		return smtpwire.Reply{}, err
	}
	r, err := c.rr.read()
	if err == nil {
		c.traceReply(r)
	}
	return r, err
}
