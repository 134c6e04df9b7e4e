package config

import (
	"strconv"
	"strings"
)

// lineIndex maps TOML keys to the lines they are written on, so that every
// problem can be reported as FILE:LINE. The TOML decoder keeps positions to
// itself (and only one per key name, which is ambiguous for arrays of
// tables), so this is a small scanner of its own: it follows table headers,
// counts [[array]] elements, reads keys (bare, quoted and dotted) and skips
// values, including arrays and strings that span lines.
//
// A path is a list of key segments; an element of an array of tables adds a
// segment "[i]" after the array's name: ["smtp_listener", "[1]", "listen"].
type lineIndex struct {
	exact map[string]int          // joined path with element segments → line
	bare  map[string][]lineRecord // joined path without element segments → every occurrence, in file order
}

// lineRecord is one place a key is written.
type lineRecord struct {
	line  int
	value string // raw text of the value on its first line
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

func indexLines(src string) *lineIndex {
	ix := &lineIndex{exact: map[string]int{}, bare: map[string][]lineRecord{}}
	lines := strings.Split(src, "\n")
	arrays := map[string]int{} // exact path of an array of tables → elements seen
	var table []string         // exact path of the current table

	// resolve turns header segments into an exact path, adding the current
	// element of every array of tables on the way.
	resolve := func(segs []string) []string {
		var out []string
		for _, s := range segs {
			out = append(out, s)
			if n, ok := arrays[joinPath(out)]; ok {
				out = append(out, elem(n-1))
			}
		}
		return out
	}
	record := func(path []string, line int, value string) {
		k := joinPath(path)
		if _, ok := ix.exact[k]; !ok {
			ix.exact[k] = line
		}
		b := joinPath(barePath(path))
		ix.bare[b] = append(ix.bare[b], lineRecord{line: line, value: value})
	}

	for i := 0; i < len(lines); i++ {
		s := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		switch {
		case s == "" || s[0] == '#':
		case strings.HasPrefix(s, "[["):
			segs, rest, ok := parseKey(s[2:])
			if !ok || !strings.HasPrefix(rest, "]]") || len(segs) == 0 {
				continue
			}
			parent := resolve(segs[:len(segs)-1])
			arr := append(parent, segs[len(segs)-1])
			n := arrays[joinPath(arr)]
			arrays[joinPath(arr)] = n + 1
			table = append(arr[:len(arr):len(arr)], elem(n))
			record(table, i+1, "")
		case s[0] == '[':
			segs, rest, ok := parseKey(s[1:])
			if !ok || !strings.HasPrefix(rest, "]") {
				continue
			}
			table = resolve(segs)
			record(table, i+1, "")
		default:
			segs, rest, ok := parseKey(s)
			if !ok || !strings.HasPrefix(rest, "=") || len(segs) == 0 {
				continue
			}
			value := strings.TrimSpace(rest[1:])
			full := append(table[:len(table):len(table)], segs...)
			record(full, i+1, value)
			i = skipValue(lines, i, len(s)-len(rest)+1)
		}
	}
	return ix
}

// parseKey reads a (dotted) TOML key from the start of s and returns its
// segments and the text after it, with leading blanks removed.
func parseKey(s string) (segs []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, "", false
			}
			v, err := strconv.Unquote(s[:end+1])
			if err != nil {
				v = s[1:end]
			}
			segs = append(segs, v)
			s = s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", false
			}
			segs = append(segs, s[1:end+1])
			s = s[end+2:]
		default:
			n := 0
			for n < len(s) && isBareKeyByte(s[n]) {
				n++
			}
			if n == 0 {
				return nil, "", false
			}
			segs = append(segs, s[:n])
			s = s[n:]
		}
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] != '.' {
			return segs, s, true
		}
		s = s[1:]
	}
}

// skipValue follows a value that starts on line i (trimmed) at byte col and
// returns the index of the line it ends on: arrays and inline tables may span
// lines, and so may """ and ”' strings.
func skipValue(lines []string, i, col int) int {
	depth := 0
	var ml string // "\"\"\"" or "'''" while inside a multi-line string
	for ; i < len(lines); i++ {
		s := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if col > len(s) {
			col = len(s)
		}
		for j := col; j < len(s); j++ {
			if ml != "" {
				if ml == `"""` && s[j] == '\\' {
					j++
					continue
				}
				if strings.HasPrefix(s[j:], ml) {
					j += 2
					ml = ""
				}
				continue
			}
			switch c := s[j]; c {
			case '#':
				j = len(s)
			case '[', '{':
				depth++
			case ']', '}':
				depth--
			case '"', '\'':
				if strings.HasPrefix(s[j:], strings.Repeat(string(c), 3)) {
					ml = strings.Repeat(string(c), 3)
					j += 2
					continue
				}
				for j++; j < len(s) && s[j] != c; j++ {
					if c == '"' && s[j] == '\\' {
						j++
					}
				}
			}
		}
		col = 0
		if depth <= 0 && ml == "" {
			return i
		}
	}
	return len(lines) - 1
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

// occurrence returns the line of the nth (from 0) place a key without
// element segments is written. A key not written on a line of its own (inside
// an inline table) gets the line of its nearest enclosing key; 0 when none.
func (ix *lineIndex) occurrence(path []string, nth int) int {
	for n := len(path); n > 0; n-- {
		recs := ix.bare[joinPath(path[:n])]
		if len(recs) == 0 {
			continue
		}
		if nth >= len(recs) {
			nth = len(recs) - 1
		}
		return recs[nth].line
	}
	return 0
}

// lineWithValue returns the first line where the key path (without element
// segments) is written with a value containing text; 0 when none is.
func (ix *lineIndex) lineWithValue(path []string, text string) int {
	for _, r := range ix.bare[joinPath(path)] {
		if strings.Contains(r.value, text) {
			return r.line
		}
	}
	return 0
}
