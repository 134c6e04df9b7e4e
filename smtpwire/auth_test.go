package smtpwire

import "testing"

// RFC 2195 §2's example: tim / tanstaaftanstaaf.
func TestVerifyCRAMMD5(t *testing.T) {
	a := AuthCredentials{Mechanism: "CRAM-MD5", Username: "tim",
		Challenge: "<1896.697170952@postoffice.reston.mci.net>", Digest: "b913a602c7eda7a495b4e6e7334d3890"}
	if !a.VerifyCRAMMD5("tanstaaftanstaaf") {
		t.Error("RFC 2195 example rejected")
	}
	if a.VerifyCRAMMD5("wrong") {
		t.Error("wrong secret accepted")
	}
	a.Digest = "B913A602C7EDA7A495B4E6E7334D3890"
	if !a.VerifyCRAMMD5("tanstaaftanstaaf") {
		t.Error("upper-case digest rejected")
	}
	if (&AuthCredentials{Mechanism: "PLAIN", Digest: a.Digest}).VerifyCRAMMD5("tanstaaftanstaaf") {
		t.Error("verified a PLAIN exchange")
	}
}
