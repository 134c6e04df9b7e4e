package admin

import (
	"testing"

	"gannet/queue"
)

// TestInspectDSN: inspect shows a message's DSN parameters (RFC 3461), and
// nothing of them for a message without.
func TestInspectDSN(t *testing.T) {
	m := &queue.Message{ID: "x", From: "a@src.test", DSNRet: queue.RetHeaders, EnvID: "E1",
		Recipients: []queue.Recipient{
			{Addr: "b@d.test", Notify: queue.NotifySuccess | queue.NotifyDelay, ORcpt: "rfc822;B@d.test", DelayWarned: true},
			{Addr: "c@d.test"},
		}}
	mi := messageInformation(m)
	if mi.Ret != "HDRS" || mi.EnvID != "E1" {
		t.Errorf("ret %q envid %q", mi.Ret, mi.EnvID)
	}
	r := mi.Recipients[0]
	if r.Notify != "SUCCESS,DELAY" || r.ORcpt != "rfc822;B@d.test" || !r.DelayDSNSent {
		t.Errorf("recipient %+v", r)
	}
	if r := mi.Recipients[1]; r.Notify != "" || r.ORcpt != "" || r.DelayDSNSent {
		t.Errorf("recipient without DSN %+v", r)
	}
}
