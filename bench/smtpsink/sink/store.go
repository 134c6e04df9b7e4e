package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// store records an accepted message (dump files, ids line, memory, callback)
// before the sink answers 250, so that a 250 seen by the client implies the
// record exists. It returns an error when the dump cannot be written; the
// session then answers "451 4.3.0".
func (s *Sink) store(m *Message) error {
	if s.cfg.DumpDir != "" {
		base := filepath.Join(s.cfg.DumpDir, fmt.Sprintf("%09d", m.Seq))
		if err := os.WriteFile(base+".eml", m.Data, 0o644); err != nil {
			return err
		}
		env, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(base+".json", append(env, '\n'), 0o644); err != nil {
			return err
		}
	}
	if s.ids != nil {
		id := MessageKey(m.Data)
		if id == "" {
			id = "-"
		}
		s.idsMu.Lock()
		_, err := s.ids.WriteString(id + "\n")
		s.idsMu.Unlock()
		if err != nil {
			return err
		}
	}
	if s.cfg.Keep {
		s.keptMu.Lock()
		s.kept = append(s.kept, *m)
		s.keptMu.Unlock()
	}
	if s.cfg.OnMessage != nil {
		s.cfg.OnMessage(m)
	}
	return nil
}

// MessageKey returns the value of the first X-Blast-Id header of a message,
// or else of its Message-ID header, or "" when it has neither. Only the header
// section (up to the first empty line, RFC 5322 §2.1) is searched, and a
// folded value keeps its first line only.
func MessageKey(data []byte) string {
	var msgID []byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if v, ok := headerValue(line, "x-blast-id"); ok {
			return string(v)
		}
		if msgID == nil {
			if v, ok := headerValue(line, "message-id"); ok {
				msgID = v
			}
		}
	}
	return string(msgID)
}

// headerValue returns the trimmed value of line when it is the header name
// (compared case-insensitively, RFC 5322 §1.2.2).
func headerValue(line []byte, name string) ([]byte, bool) {
	if len(line) <= len(name) || line[len(name)] != ':' {
		return nil, false
	}
	if !bytes.EqualFold(line[:len(name)], []byte(name)) {
		return nil, false
	}
	return bytes.TrimSpace(line[len(name)+1:]), true
}
