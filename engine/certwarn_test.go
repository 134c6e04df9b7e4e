package engine

import (
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gannet/engine/config"
)

// TestListenerCertificateExpiry: the expiry of a listener's certificate is
// exported as gannet_tls_certificate_expiry_timestamp_seconds{listener},
// and a certificate that expires within 14 days or does not cover the
// listener's hostname is logged as a warning at start and on reload.
func TestListenerCertificateExpiry(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	pair := ca.issue(t, "other.cert.test")
	// issue makes 24-hour certificates: well within 14 days.
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePair := func() {
		t.Helper()
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}), 0o600)
		os.WriteFile(keyFile, pemKey(t, pair), 0o600)
	}
	writePair()
	cfg, err := config.Parse("cert.toml", []byte(fmt.Sprintf(`http_listener = []
[[smtp_listener]]
name = "relay-in"
listen = "127.0.0.1:0"
hostname = "relay.cert.test"
tls_cert = %q
tls_key = %q
[spool]
path = %q
[log]
path = %q
[delivery]
relay_to = "127.0.0.1:1"
`, certFile, keyFile, filepath.Join(dir, "spool"), filepath.Join(dir, "logs"))))
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	e, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
	want := fmt.Sprint(pair.Leaf.NotAfter.Unix())
	if v := sample(scrapeText(e.metrics), `gannet_tls_certificate_expiry_timestamp_seconds{listener="relay-in"}`); v != want {
		t.Errorf("expiry gauge %q, want %s", v, want)
	}
	count := func(s string) int { return strings.Count(logs.String(), s) }
	if count("listener certificate") != 2 || count("expires on") != 1 || count(`does not cover the hostname \"relay.cert.test\"`) != 1 {
		t.Fatalf("warnings at start:\n%s", logs.String())
	}
	// A new pair on disk and a reload: the gauge follows, the warnings
	// come again.
	pair = ca.issue(t, "relay.cert.test")
	writePair()
	e.Reload()
	if count("expires on") != 2 || count("does not cover") != 1 {
		t.Errorf("warnings after reload:\n%s", logs.String())
	}
	want = fmt.Sprint(pair.Leaf.NotAfter.Unix())
	if v := sample(scrapeText(e.metrics), `gannet_tls_certificate_expiry_timestamp_seconds{listener="relay-in"}`); v != want {
		t.Errorf("expiry gauge after reload %q, want %s", v, want)
	}
}
