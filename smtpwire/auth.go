package smtpwire

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// AUTH mechanisms the session implements.
const (
	mechPLAIN uint8 = 1 << iota // RFC 4616
	mechLOGIN                   // draft-murchison-sasl-login
	mechCRAM                    // RFC 2195
)

// AuthCredentials is what a client sent with AUTH (RFC 4954), for the host to
// verify. For PLAIN and LOGIN the password is there in clear; for CRAM-MD5
// the host checks Digest against the shared secret (VerifyCRAMMD5).
type AuthCredentials struct {
	Mechanism string // "PLAIN", "LOGIN" or "CRAM-MD5"
	Authzid   string // PLAIN: the authorization identity, usually ""
	Username  string // the authentication identity
	Password  string // PLAIN, LOGIN
	Challenge string // CRAM-MD5: the challenge the session sent
	Digest    string // CRAM-MD5: the client's hex HMAC-MD5 of Challenge
}

// VerifyCRAMMD5 reports whether Digest is HMAC-MD5(secret, Challenge)
// (RFC 2195 §2), in constant time.
func (a *AuthCredentials) VerifyCRAMMD5(secret string) bool {
	if a.Mechanism != "CRAM-MD5" || a.Challenge == "" {
		return false
	}
	m := hmac.New(md5.New, []byte(secret))
	m.Write([]byte(a.Challenge))
	want := make([]byte, hex.EncodedLen(md5.Size))
	hex.Encode(want, m.Sum(nil))
	return hmac.Equal(want, []byte(strings.ToLower(a.Digest)))
}

// SASL prompts of the LOGIN mechanism: base64 "Username:" and "Password:".
const (
	loginUserPrompt = "334 VXNlcm5hbWU6\r\n"
	loginPassPrompt = "334 UGFzc3dvcmQ6\r\n"
)

// startAuth handles "AUTH mechanism [initial-response]" (RFC 4954 §4).
func (s *Session) startAuth(arg []byte) Event {
	if s.mechs == 0 {
		return s.fail(ReplyNotImplemented)
	}
	if !s.esmtp {
		return s.fail(ReplyNeedHello)
	}
	if s.authed {
		return s.fail(ReplyAlreadyAuthenticated)
	}
	if s.env != nil {
		return s.fail(ReplyAuthInTransaction)
	}
	if s.cfg.AuthRequireTLS && !s.tls {
		return s.fail(ReplyAuthNeedsTLS)
	}
	mech, initial := arg, []byte(nil)
	if sp := bytes.IndexAny(arg, " \t"); sp >= 0 {
		mech, initial = arg[:sp], trimBlanks(arg[sp:])
	}
	s.authStep = 0
	switch {
	case asciiEqualFold(mech, "PLAIN") && s.mechs&mechPLAIN != 0:
		s.auth = AuthCredentials{Mechanism: "PLAIN"}
		if len(initial) == 0 {
			// An empty challenge (RFC 4954 §4: "334 " then the response).
			s.out = append(s.out, "334 \r\n"...)
			s.state = ssAuth
			return Event{}
		}
		return s.authPlain(initial)
	case asciiEqualFold(mech, "LOGIN") && s.mechs&mechLOGIN != 0:
		s.auth = AuthCredentials{Mechanism: "LOGIN"}
		if len(initial) == 0 {
			s.out = append(s.out, loginUserPrompt...)
			s.state = ssAuth
			return Event{}
		}
		return s.authLogin(initial)
	case asciiEqualFold(mech, "CRAM-MD5") && s.mechs&mechCRAM != 0:
		if len(initial) > 0 {
			// CRAM-MD5 starts with the server's challenge.
			return s.fail(ReplySyntax)
		}
		s.auth = AuthCredentials{Mechanism: "CRAM-MD5", Challenge: s.cfg.CRAMChallenge()}
		s.out = append(s.out, "334 "...)
		s.out = base64.StdEncoding.AppendEncode(s.out, []byte(s.auth.Challenge))
		s.out = append(s.out, '\r', '\n')
		s.state = ssAuth
		return Event{}
	}
	return s.fail(ReplyAuthMechanism)
}

// authResponse handles one SASL response line after a 334 challenge.
func (s *Session) authResponse(line []byte) Event {
	s.state = ssCommand
	if len(line) == 1 && line[0] == '*' {
		// RFC 4954 §4: the client cancels the exchange.
		s.reply(ReplyAuthCancelled)
		return Event{}
	}
	switch s.auth.Mechanism {
	case "PLAIN":
		return s.authPlain(line)
	case "LOGIN":
		return s.authLogin(line)
	default:
		return s.authCRAM(line)
	}
}

// decode64 decodes a SASL response into the session's scratch buffer. "="
// is the empty response (RFC 4954 §4); unpadded base64 is accepted too.
func (s *Session) decode64(b []byte) ([]byte, bool) {
	if len(b) == 1 && b[0] == '=' {
		return s.scratch[:0], true
	}
	enc := base64.StdEncoding
	if len(b)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	need := enc.DecodedLen(len(b))
	if cap(s.scratch) < need {
		s.scratch = make([]byte, need)
	}
	n, err := enc.Decode(s.scratch[:need], b)
	if err != nil {
		return nil, false
	}
	return s.scratch[:n], true
}

// authPlain decodes "authzid NUL authcid NUL passwd" (RFC 4616 §2).
func (s *Session) authPlain(resp []byte) Event {
	dec, ok := s.decode64(resp)
	if !ok {
		return s.fail(ReplyAuthBadBase64)
	}
	z, rest, ok1 := bytes.Cut(dec, []byte{0})
	user, pass, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 || len(user) == 0 || bytes.IndexByte(pass, 0) >= 0 {
		return s.fail(ReplyAuthBadData)
	}
	s.auth.Authzid, s.auth.Username, s.auth.Password = string(z), string(user), string(pass)
	s.pending = EventAuth
	return Event{Kind: EventAuth, Auth: &s.auth}
}

// authLogin takes the user name, then the password.
func (s *Session) authLogin(resp []byte) Event {
	dec, ok := s.decode64(resp)
	if !ok {
		return s.fail(ReplyAuthBadBase64)
	}
	if s.authStep == 0 {
		if len(dec) == 0 {
			return s.fail(ReplyAuthBadData)
		}
		s.auth.Username = string(dec)
		s.authStep = 1
		s.out = append(s.out, loginPassPrompt...)
		s.state = ssAuth
		return Event{}
	}
	s.auth.Password = string(dec)
	s.pending = EventAuth
	return Event{Kind: EventAuth, Auth: &s.auth}
}

// authCRAM takes "user SP hex-digest" (RFC 2195 §2).
func (s *Session) authCRAM(resp []byte) Event {
	dec, ok := s.decode64(resp)
	if !ok {
		return s.fail(ReplyAuthBadBase64)
	}
	sp := bytes.LastIndexByte(dec, ' ')
	if sp <= 0 || len(dec)-sp-1 != 32 {
		return s.fail(ReplyAuthBadData)
	}
	digest := dec[sp+1:]
	if _, err := hex.Decode(make([]byte, 16), digest); err != nil {
		return s.fail(ReplyAuthBadData)
	}
	s.auth.Username, s.auth.Digest = string(dec[:sp]), string(digest)
	s.pending = EventAuth
	return Event{Kind: EventAuth, Auth: &s.auth}
}
