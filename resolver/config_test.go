package resolver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	text := "# comment\nsearch example.test\nnameserver 127.0.0.53\nnameserver ::1\noptions timeout:2 attempts:3\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	servers, timeout, err := ParseResolvConf(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(servers, []string{"127.0.0.53:53", "[::1]:53"}) || timeout != 2*time.Second {
		t.Fatalf("got %v %v", servers, timeout)
	}

	if _, _, err := ParseResolvConf(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing file must be an error")
	}
	empty := filepath.Join(t.TempDir(), "empty.conf")
	os.WriteFile(empty, []byte("search example.test\n"), 0o644)
	if _, _, err := ParseResolvConf(empty); err == nil {
		t.Fatal("a file without nameservers must be an error")
	}
}

func TestNewReadsResolvConf(t *testing.T) {
	srv := newTestServer(t)
	path := filepath.Join(t.TempDir(), "resolv.conf")
	host, port := splitAddr(t, srv.Addr)
	// resolv.conf has no port syntax; miekg/dns uses port 53 for every server.
	os.WriteFile(path, []byte("nameserver "+host+"\n"), 0o644)
	r, err := New(Config{ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Nameservers(); !slices.Equal(got, []string{host + ":53"}) {
		t.Fatalf("nameservers = %v", got)
	}
	// Pointing the resolver at the test server needs its port: check that
	// a Config with the full address resolves.
	r, err = New(Config{Nameservers: []string{host + ":" + port}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), "sorted.test"); err != nil {
		t.Fatal(err)
	}
}

func splitAddr(t *testing.T, addr string) (string, string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	t.Fatalf("bad address %q", addr)
	return "", ""
}

func TestNewValidatesNameservers(t *testing.T) {
	r, err := New(Config{Nameservers: []string{"127.0.0.1", "[::1]", "::1", "127.0.0.1:5353", "localhost:53"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:53", "[::1]:53", "[::1]:53", "127.0.0.1:5353", "localhost:53"}
	if got := r.Nameservers(); !slices.Equal(got, want) {
		t.Fatalf("nameservers = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "host.test", "127.0.0.1:0", "127.0.0.1:99999", ":53", "127.0.0.1:x"} {
		if _, err := New(Config{Nameservers: []string{bad}}); err == nil {
			t.Errorf("nameserver %q accepted", bad)
		}
	}
}
