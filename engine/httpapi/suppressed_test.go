package httpapi

import (
	"fmt"
	"strings"
	"testing"
)

// TestSuppressedRecipients: Options.Suppressed is asked with the caller's
// tenant (the API key's) about each recipient; a refused one is left out
// of the injection and named in failed_recipients/errors, on both inject
// APIs; when every recipient is refused, /v1/message answers 422 and
// injects nothing.
func TestSuppressedRecipients(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	var asked []string
	opts.Suppressed = func(tenant, sender, rcpt string) (string, bool) {
		asked = append(asked, tenant+"|"+sender+"|"+rcpt)
		if strings.HasPrefix(rcpt, "no@") {
			return "550 5.7.1 suppressed", true
		}
		return "", false
	}
	_, base := startServer(t, opts)
	c := client(t, "127.0.0.9")
	key := map[string]string{"Authorization": "Bearer acme-key"}

	a := do(t, c, "POST", base+"/v1/message", []byte(`{"from":"a@src.test","to":["no@d.test","yes@d.test"],"subject":"s","text":"t"}`), key)
	if a.status != 202 || a.json["recipients"] != 1.0 || fmt.Sprint(a.json["failed_recipients"]) != "[no@d.test]" ||
		fmt.Sprint(a.json["errors"]) != "[no@d.test: 550 5.7.1 suppressed]" {
		t.Errorf("/v1/message: %s", a)
	}
	if m := inj.messages(); len(m) != 1 || fmt.Sprint(m[0].Recipients) != "[yes@d.test]" {
		t.Errorf("injected %+v", m)
	}
	if fmt.Sprint(asked) != "[acme|a@src.test|no@d.test acme|a@src.test|yes@d.test]" {
		t.Errorf("asked %v", asked)
	}
	inj.reset()
	a = do(t, c, "POST", base+"/v1/message", []byte(`{"from":"a@src.test","to":"no@d.test","subject":"s","text":"t"}`), key)
	if a.status != 422 || a.errorText() == "" || fmt.Sprint(a.json["failed_recipients"]) != "[no@d.test]" || len(inj.messages()) != 0 {
		t.Errorf("all refused: %s, %d injected", a, len(inj.messages()))
	}
	a = do(t, c, "POST", base+"/api/inject/v1", []byte(`{"envelope_sender":"a@src.test","recipients":[{"email":"no@d.test"},{"email":"yes@d.test"}],"content":"Subject: k\r\n\r\nk\r\n"}`), key)
	if a.status != 200 || a.json["success_count"] != 1.0 || a.json["fail_count"] != 1.0 || fmt.Sprint(a.json["failed_recipients"]) != "[no@d.test]" {
		t.Errorf("/api/inject/v1: %s", a)
	}
}
