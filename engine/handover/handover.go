// Package handover is what one Gannet node tells another when it hands
// queued mail over (gannet xfer): the login the sending node uses and the
// X-Gannet-Xfer header field that carries the message's metadata, both
// derived from a secret the nodes share ([xfer] secret).
//
// The login is AUTH (RFC 4954) as User with Password(secret). The field
// is put on top of the message the sending node spooled:
//
//	X-Gannet-Xfer: v=1; node=node-a; from=127.0.0.1:2525; id=0mxd…;
//	 tenant=acme; campaign=spring; received=1765140000; attempts=3; hops=1;
//	 signed=1; mac=…
//
// node and from name the sending node and its SMTP listener, id the
// message's id there, received its first reception (Unix seconds),
// attempts its delivery attempts so far, hops how many handovers it has
// had (this one included), signed whether it carries Gannet's DKIM
// signatures already. mac is the HMAC-SHA256 (RFC 2104), keyed by a key
// derived from the secret, of the other values and of the SHA-256 of the
// message under the field, so that a field cannot be forged nor moved to
// another message. Values are percent-encoded (url.QueryEscape).
//
// The package is pure: no I/O, no clock.
package handover

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gannet/msgheader"
)

// HeaderName is the field that carries a handover's metadata.
const HeaderName = "X-Gannet-Xfer"

// User is the AUTH name a sending node logs in with.
const User = "gannet-xfer"

// MaxHops is the most handovers a message may have: a node refuses a
// field with more (554 5.4.6, RFC 3463's routing loop).
const MaxHops = 2

// Meta is what a handover carries of the message.
type Meta struct {
	Node     string    // the sending node's id ([cluster] node_id, else its host name)
	From     string    // the sending node's SMTP listener, host:port
	ID       string    // the message's id on the sending node
	Tenant   string    //
	Campaign string    //
	Received time.Time // the message's first reception
	Attempts int       // delivery attempts so far
	Hops     int       // handovers, this one included
	Signed   bool      // it carries DKIM signatures already
}

// derive returns a key for one use of the secret.
func derive(secret, use string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("gannet xfer " + use))
	return m.Sum(nil)
}

// Password is the AUTH password of User under secret.
func Password(secret string) string {
	return base64.RawURLEncoding.EncodeToString(derive(secret, "login v1"))
}

// CheckPassword reports, in constant time, whether password is
// Password(secret); never with an empty secret.
func CheckPassword(secret, password string) bool {
	if secret == "" {
		return false
	}
	w, g := sha256.Sum256([]byte(Password(secret))), sha256.Sum256([]byte(password))
	return subtle.ConstantTimeCompare(w[:], g[:]) == 1
}

// values is the field's value without mac, in its fixed order.
func (m *Meta) values() string {
	signed := "0"
	if m.Signed {
		signed = "1"
	}
	q := url.QueryEscape
	return fmt.Sprintf("v=1; node=%s; from=%s; id=%s; tenant=%s; campaign=%s; received=%d; attempts=%d; hops=%d; signed=%s",
		q(m.Node), q(m.From), q(m.ID), q(m.Tenant), q(m.Campaign), m.Received.Unix(), m.Attempts, m.Hops, signed)
}

// mac is the field's MAC of values over msg.
func mac(secret, values string, msg []byte) string {
	h := hmac.New(sha256.New, derive(secret, "header v1"))
	sum := sha256.Sum256(msg)
	h.Write([]byte(values))
	h.Write([]byte{0})
	h.Write(sum[:])
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Prepend returns msg with the field of m on top (folded at the
// semicolons, RFC 5322 §2.2.3), in a new slice.
func Prepend(secret string, m Meta, msg []byte) []byte {
	v := m.values()
	field := HeaderName + ": " + strings.ReplaceAll(v, "; ", ";\r\n ") + ";\r\n mac=" + mac(secret, v, msg) + "\r\n"
	out := make([]byte, 0, len(field)+len(msg))
	return append(append(out, field...), msg...)
}

// Errors of Verify.
var (
	ErrNoField = errors.New("no " + HeaderName + " field")
	ErrBadMAC  = errors.New(HeaderName + ": the MAC does not match (another secret, or an altered field or message)")
)

// Verify finds the first field in msg's header section, checks its MAC
// over the message under it, and returns its metadata and msg without any
// such field. ErrNoField: there is none (rest is msg).
func Verify(secret string, msg []byte) (m Meta, rest []byte, err error) {
	raw, end, ok := find(msg)
	if !ok {
		return Meta{}, msg, ErrNoField
	}
	rest = Strip(msg)
	values, sum, err := parse(raw, &m)
	if err != nil {
		return Meta{}, rest, err
	}
	// The MAC covers what the sending node spooled: the bytes under its
	// field (fields above it, such as a Received field, are not covered).
	under := msg[end:]
	if secret == "" || !hmac.Equal([]byte(sum), []byte(mac(secret, values, under))) {
		return Meta{}, rest, ErrBadMAC
	}
	return m, rest, nil
}

// Parse returns the metadata of the first field in msg, unchecked: for a
// message this node spooled itself after Verify.
func Parse(msg []byte) (Meta, bool) {
	raw, _, ok := find(msg)
	if !ok {
		return Meta{}, false
	}
	var m Meta
	if _, _, err := parse(raw, &m); err != nil {
		return Meta{}, false
	}
	return m, true
}

// find returns the unfolded value of the first field in msg's header
// section and where the field ends.
func find(msg []byte) (value string, end int, ok bool) {
	for f := range msgheader.Fields(msg) {
		if f.Is(HeaderName) {
			return f.Unfolded(), f.End(), true
		}
	}
	return "", 0, false
}

// Strip returns msg without any field (msg itself when it has none).
func Strip(msg []byte) []byte {
	var out []byte
	last := 0
	for f := range msgheader.Fields(msg) {
		if !f.Is(HeaderName) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(msg))
		}
		out = append(out, msg[last:f.Start]...)
		last = f.End()
	}
	if out == nil {
		return msg
	}
	return append(out, msg[last:]...)
}

// parse reads a field's value into m; it returns the value without mac
// (as values writes it) and the mac.
func parse(raw string, m *Meta) (values, sum string, err error) {
	var parts []string
	for p := range strings.SplitSeq(raw, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return "", "", fmt.Errorf("%s: %q is not key=value", HeaderName, p)
		}
		if k == "mac" {
			sum = v
			continue
		}
		parts = append(parts, p)
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", "", fmt.Errorf("%s: %s: %w", HeaderName, k, err)
		}
		switch k {
		case "v":
			if dv != "1" {
				return "", "", fmt.Errorf("%s: version %q, want 1", HeaderName, dv)
			}
		case "node":
			m.Node = dv
		case "from":
			m.From = dv
		case "id":
			m.ID = dv
		case "tenant":
			m.Tenant = dv
		case "campaign":
			m.Campaign = dv
		case "received":
			n, err := strconv.ParseInt(dv, 10, 64)
			if err != nil {
				return "", "", fmt.Errorf("%s: received %q", HeaderName, dv)
			}
			m.Received = time.Unix(n, 0).UTC()
		case "attempts", "hops":
			n, err := strconv.Atoi(dv)
			if err != nil || n < 0 {
				return "", "", fmt.Errorf("%s: %s %q", HeaderName, k, dv)
			}
			if k == "attempts" {
				m.Attempts = n
			} else {
				m.Hops = n
			}
		case "signed":
			m.Signed = dv == "1"
		}
	}
	if sum == "" || m.ID == "" {
		return "", "", fmt.Errorf("%s: no id or mac", HeaderName)
	}
	return strings.Join(parts, "; "), sum, nil
}
