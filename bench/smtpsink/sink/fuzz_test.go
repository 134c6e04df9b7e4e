package sink

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSession feeds arbitrary client bytes to a session and checks that it
// neither panics nor hangs, and that every reply line is well-formed
// ("DDD " or "DDD-").
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n..x\r\n.\r\nQUIT\r\n",
		"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<c@d>\r\nBDAT 3 LAST\r\nabcQUIT\r\n",
		"EHLO a\r\nAUTH LOGIN\r\ndQ==\r\ncA==\r\nRSET\r\n",
		"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\na\n.\nb\r\n.\r\n",
		"STARTTLS\r\nBDAT x\r\n\x00\xff\r\n",
		"ehlo a\nmail from:<a>\nrcpt to:<b>\ndata\n.\n",
	} {
		f.Add([]byte(seed))
	}
	s, err := Start(Config{Chunking: true, MaxMessageSize: 1 << 16, IdleTimeout: 100 * time.Millisecond, Faults: Faults{
		Failures: []Failure{{Stage: StageRcpt, Code: 450, Prob: 0.2}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		defer client.Close()
		s.mu.Lock()
		s.conns[server] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(server, nil)
		client.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			client.Write(in)
			client.Write([]byte("\r\n.\r\nQUIT\r\n"))
		}()
		r := bufio.NewReader(client)
		for {
			line, err := r.ReadString('\n')
			if err == io.EOF || err == io.ErrClosedPipe {
				return
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(line) < 6 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-') || line[len(line)-2] != '\r' {
				t.Fatalf("malformed reply line %q", line)
			}
		}
	})
}
