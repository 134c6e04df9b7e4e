package feedback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
)

// Ref is what a token names: the message Gannet sent, the tenant and
// campaign it was sent for, and — in a VERP return path, which is made per
// transaction — its recipient when the transaction had one.
type Ref struct {
	ID        string
	Tenant    string
	Campaign  string
	Recipient string // "" when the token names no recipient (X-Gannet-Ref)
}

// The errors of Key.Open.
var (
	// ErrForged: the token decodes but its MAC does not verify — it was
	// made up, altered, or signed under another secret.
	ErrForged = errors.New("reference does not verify (forged, altered or signed under another secret)")
	// ErrBadToken: the token is not base64url or its fields do not parse.
	ErrBadToken = errors.New("reference is not a Gannet token")
)

// A token is base64url (RFC 4648 §5, no padding: safe in a local part and
// in a header field) of
//
//	version (1 byte, 1) | 4 × (uvarint length | bytes): id, tenant, campaign, recipient | MAC
//
// where MAC is the first macLen bytes of HMAC-SHA256 (RFC 2104) under the
// key over "gannet-ref" and everything before it. 96 bits make a guessed
// token hopeless; the fields are as long as the names they carry (an id
// is 20 bytes), so a VERP local part is "bounce+" and about 60 characters
// plus the tenant, campaign and recipient.
const (
	tokenVersion = 1
	macLen       = 12
	maxTokenLen  = 2048
	macContext   = "gannet-ref"
)

var b64 = base64.RawURLEncoding

// Key signs and checks tokens. The zero Key (no secret) cannot sign, and
// opens nothing.
type Key struct {
	secret []byte
}

// NewKey returns the key for secret ([feedback] secret).
func NewKey(secret string) Key { return Key{secret: []byte(secret)} }

// Valid reports whether the key has a secret.
func (k Key) Valid() bool { return len(k.secret) > 0 }

// Seal returns the token for r.
func (k Key) Seal(r Ref) string {
	b := make([]byte, 0, 1+4*2+len(r.ID)+len(r.Tenant)+len(r.Campaign)+len(r.Recipient)+macLen)
	b = append(b, tokenVersion)
	for _, s := range [...]string{r.ID, r.Tenant, r.Campaign, r.Recipient} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, k.mac(b)...)
	return b64.EncodeToString(b)
}

// Open checks token and returns what it names: ErrBadToken when it is not
// a token, ErrForged when its MAC does not verify under k (or k has no
// secret).
func (k Key) Open(token string) (Ref, error) {
	token = strings.TrimSpace(token)
	if len(token) > maxTokenLen {
		return Ref{}, ErrBadToken
	}
	b, err := b64.DecodeString(token)
	if err != nil || len(b) < 1+4+macLen || b[0] != tokenVersion {
		return Ref{}, ErrBadToken
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	var f [4]string
	rest := body[1:]
	for i := range f {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return Ref{}, ErrBadToken
		}
		f[i] = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	}
	if len(rest) != 0 {
		return Ref{}, ErrBadToken
	}
	if !k.Valid() || !hmac.Equal(mac, k.mac(body)) {
		return Ref{}, ErrForged
	}
	return Ref{ID: f[0], Tenant: f[1], Campaign: f[2], Recipient: f[3]}, nil
}

func (k Key) mac(b []byte) []byte {
	h := hmac.New(sha256.New, k.secret)
	h.Write([]byte(macContext))
	h.Write(b)
	return h.Sum(nil)[:macLen]
}

// VERPAddress is the return path that carries token: prefix+token@domain
// (the "+" is the usual subaddress delimiter, as Postfix's
// recipient_delimiter).
func VERPAddress(prefix, token, domain string) string {
	return prefix + "+" + token + "@" + domain
}

// VERPToken returns the token of a return-path address made by
// VERPAddress with prefix (the prefix compared without regard to case),
// and false for any other address.
func VERPToken(addr, prefix string) (string, bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", false
	}
	local := addr[:at]
	if len(local) <= len(prefix)+1 || !strings.EqualFold(local[:len(prefix)], prefix) || local[len(prefix)] != '+' {
		return "", false
	}
	return local[len(prefix)+1:], true
}
