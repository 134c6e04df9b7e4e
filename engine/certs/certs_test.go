package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSignedIsKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s1, err := Open("", "", dir, "relay.example.test")
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := s1.GetCertificate(nil)
	s2, err := Open("", "", dir, "relay.example.test")
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := s2.GetCertificate(nil)
	if string(c1.Certificate[0]) != string(c2.Certificate[0]) {
		t.Fatal("second start generated a new certificate")
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("relay.example.test"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "selfsigned-key.pem")); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
}

func TestReloadOnChangeAndHandshake(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := WriteSelfSigned(cf, kf, "a.example.test", time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := Open(cf, kf, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	first, _ := s.GetCertificate(nil)

	// A real handshake over loopback with the store's config.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig(tls.VersionTLS12))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].Raw; string(got) != string(first.Certificate[0]) {
		t.Fatal("handshake served another certificate")
	}
	conn.Close()

	// Replace the files; after CheckInterval the new pair is served.
	if err := WriteSelfSigned(cf, kf, "b.example.test", time.Now()); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Second)
	os.Chtimes(cf, later, later)
	os.Chtimes(kf, later, later)
	now = now.Add(s.CheckInterval)
	second, _ := s.GetCertificate(nil)
	if string(second.Certificate[0]) == string(first.Certificate[0]) {
		t.Fatal("changed files were not re-read")
	}

	// A broken pair keeps the old one.
	os.WriteFile(cf, []byte("garbage"), 0o644)
	later = later.Add(time.Second)
	os.Chtimes(cf, later, later)
	now = now.Add(s.CheckInterval)
	third, _ := s.GetCertificate(nil)
	if third != second {
		t.Fatal("broken files replaced the working certificate")
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload of a broken pair succeeded")
	}
}

func TestOpenNeedsBothFiles(t *testing.T) {
	if _, err := Open("c.pem", "", t.TempDir(), "x"); err == nil {
		t.Fatal("cert without key accepted")
	}
}

func TestProblems(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{DNSNames: []string{"relay.example.test", "*.mx.example.test"}, NotAfter: now.Add(30 * 24 * time.Hour)}
	week := 7 * 24 * time.Hour
	cases := []struct {
		notAfter time.Time
		host     string
		want     []string
	}{
		{now.Add(30 * 24 * time.Hour), "relay.example.test", nil},
		{now.Add(30 * 24 * time.Hour), "a.mx.example.test", nil},
		{now.Add(30 * 24 * time.Hour), "", nil},
		{now.Add(3 * 24 * time.Hour), "relay.example.test", []string{"expires on 2026-12-10T12:00:00Z, in 72h0m0s"}},
		{now.Add(-time.Hour), "relay.example.test", []string{"expired on 2026-12-07T11:00:00Z"}},
		{now.Add(30 * 24 * time.Hour), "other.test", []string{`does not cover the hostname "other.test" (it names [relay.example.test *.mx.example.test])`}},
		{now.Add(30 * 24 * time.Hour), "a.b.mx.example.test", []string{`does not cover the hostname "a.b.mx.example.test" (it names [relay.example.test *.mx.example.test])`}},
	}
	for _, c := range cases {
		leaf.NotAfter = c.notAfter
		got := Problems(leaf, c.host, now, 2*week)
		if len(got) != len(c.want) {
			t.Errorf("%v %q: %q, want %q", c.notAfter, c.host, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%v %q: %q, want %q", c.notAfter, c.host, got, c.want)
			}
		}
	}
	if p := Problems(nil, "x", now, week); len(p) != 1 {
		t.Errorf("nil leaf: %q", p)
	}
}

// TestOpenNamesMissingFile: a missing certificate or key is named by its
// key and path, without Go's "stat" (the engine puts the listener before).
func TestOpenNamesMissingFile(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := WriteSelfSigned(cert, key, "relay.test", time.Now()); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tt := range []struct{ cert, key, want string }{
		{missing, key, "tls_cert " + missing + ": no such file or directory"},
		{cert, missing, "tls_key " + missing + ": no such file or directory"},
	} {
		if _, err := Open(tt.cert, tt.key, dir, "relay.test"); err == nil || err.Error() != tt.want {
			t.Errorf("Open(%s, %s) = %v, want %q", tt.cert, tt.key, err, tt.want)
		}
	}
}
