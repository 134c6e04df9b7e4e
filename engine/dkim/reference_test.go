package dkim

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// The reference: go-msgauth's signer (v0.7.0), which Gannet signed with
// before it had its own. The tests check that Gannet's signatures are the
// ones go-msgauth makes for the same key, time and header list, and that
// its body hash is go-msgauth's for any body.

// refSign returns go-msgauth's DKIM-Signature field for msg, signed the
// way Sign signs (relaxed/relaxed, SHA-256, the header list keys).
func refSign(tb testing.TB, msg []byte, key crypto.Signer, domain, selector string, keys []string) string {
	tb.Helper()
	s, err := msgauth.NewSigner(&msgauth.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauth.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	})
	if err != nil {
		tb.Fatal(err)
	}
	_, err = s.Write(msg)
	if _, body := splitHeader(msg, nil); err == nil && body == nil {
		// go-msgauth needs the empty line that ends the header section.
		_, err = s.Write([]byte("\r\n\r\n"))
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatalf("go-msgauth: %v", err)
	}
	return s.Signature()
}

// refKey is an Ed25519 key for reference body hashes: the cheapest
// signature, so that the hash dominates.
var refKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

const refHeader = "From: a@example.com\r\n\r\n"

// refBodyHash returns go-msgauth's "bh=" for the message refHeader+body.
func refBodyHash(tb testing.TB, msg []byte) string {
	tb.Helper()
	return tagValue([]byte(refSign(tb, msg, refKey, "example.com", "s", []string{"From"})), "bh")
}

// gannetBodyHash returns Gannet's "bh=" for body.
func gannetBodyHash(body []byte) string {
	sum := bodyHash(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// signAt returns Sign's fields for msg with a Signers of the one key cfg
// whose clock stands at ts.
func signAt(tb testing.TB, cfg KeyConfig, ts time.Time, msg []byte) []byte {
	tb.Helper()
	s := newSigners(tb, []KeyConfig{cfg}, withMinRSABits(1024), withClock(func() time.Time { return ts }))
	sigs, err := s.Sign(msg, []string{cfg.Domain})
	if err != nil {
		tb.Fatal(err)
	}
	return sigs
}
