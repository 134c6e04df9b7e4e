package config

import (
	"strconv"
	"strings"
)

// lineIndex maps TOML keys to the lines they are written on, so that every
// problem can be reported as FILE:LINE; the decoder fills it in as it reads
// each key.
//
// A path is a list of key segments; an element of an array of tables adds a
// segment "[i]" after the array's name: ["smtp_listener", "[1]", "listen"].
type lineIndex struct {
	exact map[string]int // joined path with element segments → line
}

const pathSep = "\x00"

func joinPath(path []string) string { return strings.Join(path, pathSep) }

func isElem(seg string) bool { return strings.HasPrefix(seg, "[") && strings.HasSuffix(seg, "]") }

func barePath(path []string) []string {
	out := make([]string, 0, len(path))
	for _, s := range path {
		if !isElem(s) {
			out = append(out, s)
		}
	}
	return out
}

// elem returns the path segment of the i-th element of an array of tables.
func elem(i int) string { return "[" + strconv.Itoa(i) + "]" }

// displayPath formats a path for messages: smtp_listener[1].listen,
// shaping."gmail.com".connection_limit.
func displayPath(path []string) string {
	var b strings.Builder
	for _, s := range path {
		if isElem(s) {
			b.WriteString(s)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if isBareKey(s) {
			b.WriteString(s)
		} else {
			b.WriteString(strconv.Quote(s))
		}
	}
	return b.String()
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareKeyByte(s[i]) {
			return false
		}
	}
	return true
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// line returns the line of path, or of its nearest enclosing table or array
// element written in the file; 0 when none is. Keys are matched exactly,
// then without regard to case (shaping domains are lower-cased on load).
func (ix *lineIndex) line(path []string) int {
	for n := len(path); n > 0; n-- {
		k := joinPath(path[:n])
		if l, ok := ix.exact[k]; ok {
			return l
		}
		best := 0
		for ek, l := range ix.exact {
			if strings.EqualFold(ek, k) && (best == 0 || l < best) {
				best = l
			}
		}
		if best > 0 {
			return best
		}
	}
	return 0
}
