package sink

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// BenchmarkSinkMessage measures the sink's cost per 2 KB message over
// loopback: one connection, each transaction pipelined in one write and its
// four replies read back (the client's cost is included). "persona" plays a
// provider whose limits the load stays under: the cost of its checks.
func BenchmarkSinkMessage(b *testing.B) {
	for _, variant := range []struct {
		name string
		cfg  Config
	}{
		{"count", Config{}},
		{"keep", Config{OnMessage: func(*Message) {}}},
		{"persona", Config{Personas: []Persona{{Listen: "127.0.0.1:0", Rate: 1e9, MaxConns: 100, RateStage: "dot"}}}},
	} {
		b.Run(variant.name, func(b *testing.B) {
			s := startSink(b, variant.cfg)
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			readReply := func() string {
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if len(line) >= 4 && line[3] == ' ' {
						return line
					}
				}
			}
			readReply()
			c.Write([]byte("EHLO bench.example.test\r\n"))
			readReply()
			var body strings.Builder
			body.WriteString("Subject: bench\r\nX-Blast-Id: b-1\r\n\r\n")
			for body.Len() < 2048 {
				body.WriteString("..The quick brown fox jumps over the lazy dog, again and again.\r\n")
			}
			tx := []byte("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n" + body.String() + ".\r\n")
			b.SetBytes(int64(len(tx)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(tx); err != nil {
					b.Fatal(err)
				}
				for range 4 {
					if line := readReply(); line[0] != '2' && line[0] != '3' {
						b.Fatalf("reply %q", line)
					}
				}
			}
			b.StopTimer()
			if got := s.Stats().Messages; got != uint64(b.N) {
				b.Fatalf("sink counted %d messages, want %d", got, b.N)
			}
		})
	}
}
