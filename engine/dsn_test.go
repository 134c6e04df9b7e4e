package engine

import (
	"testing"

	"gannet/queue"
	"gannet/smtpwire"
)

// TestWithDSN: the DSN parameters of the SMTP envelope reach the spooled
// message, each recipient's matched by address (the policy may reorder or
// drop recipients), and HTTP mail (no envelope) has none.
func TestWithDSN(t *testing.T) {
	env := &smtpwire.Envelope{
		Ret: smtpwire.RetHeaders, EnvID: "E1",
		Rcpts: []smtpwire.Path{
			{Addr: "a@x.test", Notify: smtpwire.NotifySuccess, ORcpt: "rfc822;A@x.test"},
			{Addr: "b@x.test", Notify: smtpwire.NotifyNever},
			{Addr: "a@x.test", Notify: smtpwire.NotifyDelay},
		},
	}
	m := &queue.Message{Recipients: []queue.Recipient{{Addr: "b@x.test"}, {Addr: "c@x.test"}, {Addr: "a@x.test"}, {Addr: "a@x.test"}}}
	withDSN(m, env)
	if m.DSNRet != queue.RetHeaders || m.EnvID != "E1" {
		t.Errorf("ret %d envid %q", m.DSNRet, m.EnvID)
	}
	want := []queue.Recipient{
		{Addr: "b@x.test", Notify: queue.NotifyNever},
		{Addr: "c@x.test"},
		{Addr: "a@x.test", Notify: queue.NotifySuccess, ORcpt: "rfc822;A@x.test"},
		{Addr: "a@x.test", Notify: queue.NotifyDelay},
	}
	for i := range want {
		if m.Recipients[i] != want[i] {
			t.Errorf("recipient %d = %+v, want %+v", i, m.Recipients[i], want[i])
		}
	}
	plain := &queue.Message{Recipients: []queue.Recipient{{Addr: "a@x.test"}}}
	withDSN(plain, nil)
	if plain.HasDSN() {
		t.Errorf("HTTP message with DSN parameters: %+v", plain)
	}
}
