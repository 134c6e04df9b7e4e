//go:build openssl && cgo

package opensslrsa

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static EVP_PKEY *gannet_rsa_load(const unsigned char *der, long len) {
	return d2i_PrivateKey(EVP_PKEY_RSA, NULL, &der, len);
}

// gannet_rsa_sign signs a SHA-256 digest; 1 on success.
static int gannet_rsa_sign(EVP_PKEY *key, const unsigned char *digest, size_t dlen, unsigned char *sig, size_t *siglen) {
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	if (ctx == NULL) {
		return 0;
	}
	int ok = EVP_PKEY_sign_init(ctx) == 1 &&
		EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		EVP_PKEY_sign(ctx, sig, siglen, digest, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"unsafe"
)

// opensslRSA is a crypto.Signer whose private operation is libcrypto's.
// The EVP_PKEY is only read when signing (a context per signature), which
// OpenSSL allows from many threads at once.
type opensslRSA struct {
	pub  rsa.PublicKey
	pkey *C.EVP_PKEY
	size int // modulus bytes: the signature's length
}

// New returns a signer for k whose private operation is libcrypto's, or k
// itself when the key does not load there (it then signs with crypto/rsa).
func New(k *rsa.PrivateKey) crypto.Signer {
	der := x509.MarshalPKCS1PrivateKey(k)
	p := C.gannet_rsa_load((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	clear(der)
	if p == nil {
		return k
	}
	s := &opensslRSA{pub: k.PublicKey, pkey: p, size: k.Size()}
	runtime.AddCleanup(s, func(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }, p)
	return s
}

func (s *opensslRSA) Public() crypto.PublicKey { return &s.pub }

// Sign signs a SHA-256 digest with PKCS #1 v1.5 padding; rand is not used
// (the padding is deterministic).
func (s *opensslRSA) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		return nil, errors.New("opensslrsa: the OpenSSL RSA signer signs SHA-256 digests only")
	}
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, errors.New("opensslrsa: the OpenSSL RSA signer does not do PSS")
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("opensslrsa: digest of %d bytes, want %d", len(digest), crypto.SHA256.Size())
	}
	sig := make([]byte, s.size)
	n := C.size_t(len(sig))
	ok := C.gannet_rsa_sign(s.pkey, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), &n)
	runtime.KeepAlive(s)
	if ok != 1 || int(n) != len(sig) {
		return nil, errors.New("opensslrsa: OpenSSL RSA signing failed")
	}
	return sig, nil
}
