package bounce

import (
	"regexp/syntax"
	"strings"
)

// minLiteral is the shortest literal worth a prefilter entry: shorter ones
// ("55", " ") occur in nearly every reply and would only cost time.
const minLiteral = 3

// requiredLiterals returns what every match of the regular expression
// must contain: a list of sets such that a matched text, once folded (see
// foldText), contains at least one literal of every set. An empty list
// means nothing is known, and the rule must be tried on every reply. The
// literals are folded ASCII.
//
// This is the prefilter of RE2's FilteredRE2 and of code search indexes,
// reduced to what bounce rules need: a concatenation requires everything
// its parts require, an alternation requires one of its branches' best
// sets, a repetition of at least one requires what its body requires, and
// anything that may match the empty string requires nothing.
func requiredLiterals(re *syntax.Regexp) [][]string {
	switch re.Op {
	case syntax.OpLiteral:
		s := longestASCIIRun(re.Rune)
		if len(s) < minLiteral {
			return nil
		}
		return [][]string{{s}}
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
		return nil
	case syntax.OpConcat:
		var all [][]string
		seen := map[string]bool{}
		for _, sub := range re.Sub {
			for _, set := range requiredLiterals(sub) {
				if key := strings.Join(set, "\x00"); !seen[key] {
					seen[key] = true
					all = append(all, set)
				}
			}
		}
		return all
	case syntax.OpAlternate:
		var union []string
		for _, sub := range re.Sub {
			best := bestSet(requiredLiterals(sub))
			if best == nil {
				return nil
			}
			union = append(union, best...)
		}
		return [][]string{dedupe(union)}
	}
	return nil
}

// bestSet picks the set that filters best.
func bestSet(sets [][]string) []string {
	var best []string
	for _, s := range sets {
		if betterLiterals(s, best) {
			best = s
		}
	}
	return best
}

// betterLiterals reports whether set a filters better than set b: its
// shortest member is longer (rarer), or as long and the set is smaller.
func betterLiterals(a, b []string) bool {
	if b == nil {
		return true
	}
	ma, mb := minLen(a), minLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(set []string) int {
	m := -1
	for _, s := range set {
		if m < 0 || len(s) < m {
			m = len(s)
		}
	}
	return m
}

func dedupe(set []string) []string {
	out := set[:0:0]
	seen := make(map[string]bool, len(set))
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// longestASCIIRun returns the longest run of ASCII runes in a literal,
// folded. A case-insensitive ASCII letter can only match itself in the
// other case, or U+017F (ſ, folds to s) and U+212A (Kelvin sign, folds to
// k), which foldText maps to the ASCII letter too; non-ASCII runes are left
// out because their case variants are not handled by foldText.
func longestASCIIRun(runes []rune) string {
	var best, cur []byte
	for _, r := range runes {
		if r < 0x80 {
			cur = append(cur, foldByte(byte(r)))
			if len(cur) > len(best) {
				best = cur
			}
			continue
		}
		cur = nil
	}
	return string(best)
}

// foldByte lower-cases an ASCII letter.
func foldByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

// foldText appends text folded for the prefilter: ASCII lower-cased, and
// the two non-ASCII runes whose case folding reaches ASCII letters,
// U+017F "ſ" and U+212A "K", replaced by "s" and "k". Everything else is
// copied as is.
func foldText(dst, text []byte) []byte {
	for i := 0; i < len(text); i++ {
		b := text[i]
		switch {
		case b < 0x80:
			dst = append(dst, foldByte(b))
		case b == 0xC5 && i+1 < len(text) && text[i+1] == 0xBF: // U+017F
			dst = append(dst, 's')
			i++
		case b == 0xE2 && i+2 < len(text) && text[i+1] == 0x84 && text[i+2] == 0xAA: // U+212A
			dst = append(dst, 'k')
			i += 2
		default:
			dst = append(dst, b)
		}
	}
	return dst
}
