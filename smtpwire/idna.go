package smtpwire

import (
	"strings"
)

// domainToASCII lower-cases an ASCII domain and turns every non-ASCII label
// into its A-label "xn--" + punycode (RFC 3492, RFC 5891 §4.4). The mapping
// step of IDNA2008 is reduced to Unicode lower-casing, which covers what
// SMTPUTF8 clients send in practice. It does not allocate when d is already
// lower-case ASCII.
func domainToASCII(d string) string {
	lower := true
	for i := 0; i < len(d); i++ {
		if c := d[i]; c >= 0x80 || c >= 'A' && c <= 'Z' {
			lower = false
			break
		}
	}
	if lower {
		return d
	}
	if isASCII(d) {
		return strings.ToLower(d)
	}
	var b []byte
	for i, label := range strings.Split(strings.ToLower(d), ".") {
		if i > 0 {
			b = append(b, '.')
		}
		if isASCII(label) {
			b = append(b, label...)
			continue
		}
		b = append(b, "xn--"...)
		b = appendPunycode(b, label)
	}
	return string(b)
}

// Punycode parameters (RFC 3492 §5).
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
)

// appendPunycode appends the RFC 3492 §6.3 encoding of label.
func appendPunycode(dst []byte, label string) []byte {
	runes := []rune(label)
	basic := 0
	for _, r := range runes {
		if r < 0x80 {
			dst = append(dst, byte(r))
			basic++
		}
	}
	if basic > 0 {
		dst = append(dst, '-')
	}
	n, delta, bias := pcInitialN, 0, pcInitialBias
	for h := basic; h < len(runes); {
		m := int(^uint32(0) >> 1)
		for _, r := range runes {
			if int(r) >= n && int(r) < m {
				m = int(r)
			}
		}
		delta += (m - n) * (h + 1)
		n = m
		for _, r := range runes {
			if int(r) < n {
				delta++
			}
			if int(r) != n {
				continue
			}
			q := delta
			for k := pcBase; ; k += pcBase {
				t := k - bias
				if t < pcTMin {
					t = pcTMin
				} else if t > pcTMax {
					t = pcTMax
				}
				if q < t {
					break
				}
				dst = append(dst, punyDigit(t+(q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			dst = append(dst, punyDigit(q))
			bias = punyAdapt(delta, h+1, h == basic)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return dst
}

func punyDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

// punyAdapt is the bias adaptation of RFC 3492 §6.1.
func punyAdapt(delta, numPoints int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}
