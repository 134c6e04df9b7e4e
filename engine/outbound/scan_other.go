//go:build !amd64 || purego

package outbound

// bodyTraits reports what newClientMessage needs to know of a body: whether
// it is CRLF-clean and whether it is 7-bit.
func bodyTraits(body []byte) (crlfClean, ascii bool) {
	return cleanCRLF(body), isASCIIBytes(body)
}
