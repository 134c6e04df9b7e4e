//go:build openssl && cgo

package opensslrsa

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"
)

// TestSameSignaturesAsCryptoRSA: for keys of several sizes and many
// digests, libcrypto's PKCS #1 v1.5 signature is byte for byte crypto/rsa's
// (the scheme is deterministic) and crypto/rsa verifies it.
func TestSameSignaturesAsCryptoRSA(t *testing.T) {
	for _, bits := range []int{1024, 2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		s := New(k)
		if _, ok := s.(*opensslRSA); !ok {
			t.Fatalf("%d bits: the key did not load into libcrypto (%T)", bits, s)
		}
		if !k.PublicKey.Equal(s.Public()) {
			t.Fatalf("%d bits: Public differs", bits)
		}
		for i := range 50 {
			d := sha256.Sum256(fmt.Appendf(nil, "message %d of %d bits", i, bits))
			got, err := s.Sign(nil, d[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			want, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d bits, digest %d: libcrypto's signature differs from crypto/rsa's", bits, i)
			}
			if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, d[:], got); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestRefusesWhatItDoesNotDo: other hashes, PSS and wrong digest lengths
// are errors, not wrong signatures.
func TestRefusesWhatItDoesNotDo(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	s := New(k)
	d := sha256.Sum256([]byte("x"))
	for name, call := range map[string]func() error{
		"sha1":  func() error { _, err := s.Sign(nil, d[:20], crypto.SHA1); return err },
		"pss":   func() error { _, err := s.Sign(nil, d[:], &rsa.PSSOptions{Hash: crypto.SHA256}); return err },
		"short": func() error { _, err := s.Sign(nil, d[:31], crypto.SHA256); return err },
		"nil":   func() error { _, err := s.Sign(nil, d[:], nil); return err },
	} {
		if call() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestConcurrentSigning: one key signs from many goroutines at once (the
// inbound workers do), every signature right.
func TestConcurrentSigning(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	s := New(k)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 40 {
				d := sha256.Sum256(fmt.Appendf(nil, "%d/%d", g, i))
				sig, err := s.Sign(nil, d[:], crypto.SHA256)
				if err == nil {
					err = rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, d[:], sig)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkSign2048(b *testing.B) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	d := sha256.Sum256([]byte("x"))
	for _, c := range []struct {
		name string
		s    crypto.Signer
	}{{"openssl", New(k)}, {"crypto-rsa", k}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.s.Sign(rand.Reader, d[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
