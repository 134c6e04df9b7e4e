package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gannet/engine/trace"
)

func TestFormatEvent(t *testing.T) {
	at := time.Date(2026, 12, 7, 14, 3, 27, 96_000_000, time.UTC)
	for _, c := range []struct {
		ev   trace.Event
		want string
	}{
		{trace.Event{Time: at, Side: trace.Server, Session: 1, Kind: trace.Command, Text: "AUTH PLAIN ***"},
			"14:03:27.096 in#1 C: AUTH PLAIN ***\n"},
		{trace.Event{Time: at, Side: trace.Client, Session: 2, Kind: trace.Reply, Text: "250-mx.example\r\n250 CHUNKING"},
			"14:03:27.096 out#2 S: 250-mx.example\n14:03:27.096 out#2 S: 250 CHUNKING\n"},
		{trace.Event{Time: at, Side: trace.Server, Session: 1, Kind: trace.Body, Text: "247 octets of message data (elided)"},
			"14:03:27.096 in#1 C: [247 octets of message data (elided)]\n"},
		{trace.Event{Time: at, Side: trace.Server, Session: 1, Kind: trace.Connect, Text: "connection from 127.0.0.1:5 to 127.0.0.1:25",
			Peer: netip.MustParseAddrPort("127.0.0.1:5"), Listen: "relay-in"},
			"14:03:27.096 in#1 == connection from 127.0.0.1:5 to 127.0.0.1:25 (listener relay-in)\n"},
		{trace.Event{Time: at, Side: trace.Client, Session: 2, Kind: trace.TLS, Text: "TLSv1.3 TLS_AES_128_GCM_SHA256", Dropped: 4},
			"14:03:27.096 out#2 !! 4 trace events dropped before this one: this reader was too slow\n14:03:27.096 out#2 == tls: TLSv1.3 TLS_AES_128_GCM_SHA256\n"},
		{trace.Event{Time: at, Kind: trace.Dropped, Dropped: 9},
			"14:03:27.096 !! 9 trace events dropped: this reader was too slow\n"},
	} {
		if got := formatEvent(&c.ev); got != c.want {
			t.Errorf("formatEvent(%+v) =\n%q\nwant\n%q", c.ev, got, c.want)
		}
	}
}

func TestTraceUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if st := realMain([]string{"trace", "sideways"}, &out, &errb); st != 2 {
		t.Errorf("trace sideways: exit %d", st)
	}
	if st := realMain([]string{"trace", "server", "-domain", "x.test"}, &out, &errb); st != 2 || !strings.Contains(errb.String(), "go with trace client") {
		t.Errorf("trace server -domain: exit %d, %s", st, errb.String())
	}
	errb.Reset()
	if st := realMain([]string{"trace", "client", "-api", "http://127.0.0.1:1"}, &out, &errb); st != 1 || !strings.Contains(errb.String(), "cannot reach the admin API") {
		t.Errorf("trace client against nothing: exit %d, %s", st, errb.String())
	}
}
