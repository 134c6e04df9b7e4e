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

// gannet_rsa_ctx makes a context that signs SHA-256 digests with key,
// PKCS #1 v1.5 padding; NULL on failure. A context signs again and again,
// one signature at a time.
static EVP_PKEY_CTX *gannet_rsa_ctx(EVP_PKEY *key) {
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	if (ctx == NULL) {
		return NULL;
	}
	if (EVP_PKEY_sign_init(ctx) != 1 ||
		EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
		EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

// gannet_rsa_sign signs a SHA-256 digest with a context of gannet_rsa_ctx;
// 1 on success.
static int gannet_rsa_sign(EVP_PKEY_CTX *ctx, const unsigned char *digest, size_t dlen, unsigned char *sig, size_t *siglen) {
	return EVP_PKEY_sign(ctx, sig, siglen, digest, dlen) == 1;
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
// The EVP_PKEY is only read when signing, which OpenSSL allows from many
// threads at once; each signature takes a context of its own from ctxs,
// made ready once and used again: making one (EVP_PKEY_CTX_new and the
// sign setup, with OpenSSL 3's provider lookups) cost about 10–20 µs of the
// 370 µs of a 2048-bit signature.
type opensslRSA struct {
	pub  rsa.PublicKey
	pkey *C.EVP_PKEY
	size int                  // modulus bytes: the signature's length
	ctxs chan *C.EVP_PKEY_CTX // idle contexts; more are made when empty
}

// opensslKey is what the cleanup of an opensslRSA frees.
type opensslKey struct {
	pkey *C.EVP_PKEY
	ctxs chan *C.EVP_PKEY_CTX
}

func (k opensslKey) free() {
	for {
		select {
		case ctx := <-k.ctxs:
			C.EVP_PKEY_CTX_free(ctx)
		default:
			C.EVP_PKEY_free(k.pkey)
			return
		}
	}
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
	// As many idle contexts as signatures may run at once: the workers
	// that sign run on every core.
	s := &opensslRSA{pub: k.PublicKey, pkey: p, size: k.Size(), ctxs: make(chan *C.EVP_PKEY_CTX, 2*runtime.GOMAXPROCS(0))}
	runtime.AddCleanup(s, opensslKey.free, opensslKey{pkey: p, ctxs: s.ctxs})
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
	var ctx *C.EVP_PKEY_CTX
	select {
	case ctx = <-s.ctxs:
	default:
		if ctx = C.gannet_rsa_ctx(s.pkey); ctx == nil {
			return nil, errors.New("opensslrsa: OpenSSL RSA signing context failed")
		}
	}
	sig := make([]byte, s.size)
	n := C.size_t(len(sig))
	ok := C.gannet_rsa_sign(ctx, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), &n)
	if ok != 1 || int(n) != len(sig) {
		C.EVP_PKEY_CTX_free(ctx) // not used again after a failure
		runtime.KeepAlive(s)
		return nil, errors.New("opensslrsa: OpenSSL RSA signing failed")
	}
	select {
	case s.ctxs <- ctx:
	default:
		C.EVP_PKEY_CTX_free(ctx)
	}
	runtime.KeepAlive(s)
	return sig, nil
}
