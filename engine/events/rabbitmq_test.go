package events

import (
	"os"
	"sync"
	"testing"

	"gannet/internal/rabbitmqtest"
)

// The AMQP tests share one real rabbitmq-server (internal/rabbitmqtest),
// started by the first test that needs it and stopped by TestMain: it
// takes seconds to start.
var broker struct {
	once sync.Once
	srv  *rabbitmqtest.Server
	err  error
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir) // never returns
	}
	code := m.Run()
	if broker.srv != nil {
		broker.srv.Stop()
	}
	os.Exit(code)
}

// startBroker returns the test binary's broker, starting it on first use;
// without rabbitmq-server the test fails in CI and is skipped elsewhere.
func startBroker(t testing.TB) *rabbitmqtest.Server {
	t.Helper()
	broker.once.Do(func() { broker.srv, broker.err = rabbitmqtest.Start() })
	if broker.err != nil {
		rabbitmqtest.Missing(t, broker.err)
	}
	return broker.srv
}
