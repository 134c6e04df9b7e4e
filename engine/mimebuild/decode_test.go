package mimebuild

import "mime"

// mimeDecoder decodes RFC 2047 encoded words as Go's mime package reads them.
type mimeDecoder struct{ d mime.WordDecoder }

func (m *mimeDecoder) decode(s string) string {
	out, err := m.d.DecodeHeader(s)
	if err != nil {
		return "<error: " + err.Error() + ">"
	}
	return out
}
