package outbound

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// FuzzServerReplies plays arbitrary server output against a session setup
// and one two-recipient transaction: server replies are untrusted input.
// The client must not panic or hang, must answer for every recipient, and
// may call a recipient delivered only on a 2xx reply.
func FuzzServerReplies(f *testing.F) {
	for _, s := range []string{
		"220 mx ESMTP\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n250 2.0.0 queued\r\n",
		"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n451 4.3.0 later\r\n",
		"220 mx\r\n502 no\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n",
		"220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n",
		"220 mx\r\n250-mx\r\n250 PIPELINING\r\n421 4.4.2 bye\r\n",
		"220-mx\r\n220 more\r\n250-mx\r\n250 SMTPUTF8\r\n250 ok\r\n550 a\r\n550 b\r\n354 go\r\n250 ok\r\n",
		"220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 2.0.0 queued\r\n",
		"220 mx\r\n250-mx\r\n250-CHUNKING\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n250 ok\r\n421 4.3.2 closing\r\n",
		"220 mx\r\n250-mx\r\n250-CHUNKING\r\n250 PIPELINING\r\n550 5.7.1 no\r\n503 5.5.1 rcpt first\r\n503 x\r\n554 5.5.1 no recipients\r\n",
		"554 go away\r\n",
		"220 mx\r\n250 mx\r\n250 ok\r\n25",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		cli, srv := net.Pipe()
		go io.Copy(io.Discard, srv)
		go srv.Write(script)
		cfg := &dialConfig{ehloName: "relay.test", commandTimeout: 20 * time.Millisecond, dataTimeout: 20 * time.Millisecond, tls: TLSPolicy{Mode: TLSDisabled}}
		c := &Client{cfg: cfg, conn: cli, host: "mx.test", peer: netip.MustParseAddrPort("127.0.0.1:25")}
		c.rr.reset(cli)
		c.w = bufio.NewWriterSize(cli, 4096)
		ctx := context.Background()
		e := &Envelope{From: "s@src.test", Rcpts: []string{"a@dst.test", "b@dst.test"}, Body: []byte("Subject: x\r\n\r\n.x\r\n")}
		if serr := c.hello(ctx, false); serr == nil {
			res, _ := c.send(ctx, e, newClientMessage(e), nil)
			if len(res) != 2 {
				t.Fatalf("%d results for 2 recipients", len(res))
			}
			for _, r := range res {
				if r.Status == Delivered && r.Reply.Code/100 != 2 {
					t.Fatalf("delivered on reply %s", r.Reply)
				}
				if r.Status > Bounced {
					t.Fatalf("bad status %d", r.Status)
				}
			}
		}
		cli.Close()
		srv.Close()
	})
}
