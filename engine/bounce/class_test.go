package bounce

import "testing"

func TestClassNames(t *testing.T) {
	for _, cl := range Classes() {
		got, ok := ParseClass(cl.String())
		if !ok || got != cl {
			t.Errorf("ParseClass(%q) = %v, %v", cl.String(), got, ok)
		}
		b, _ := cl.MarshalText()
		var back Class
		if err := back.UnmarshalText(b); err != nil || back != cl {
			t.Errorf("text round trip of %s: %v %v", cl, back, err)
		}
	}
	if _, ok := ParseClass("invalidrecipient"); ok {
		t.Error("ParseClass is case-insensitive")
	}
	var c Class
	if err := c.UnmarshalText([]byte("Nope")); err == nil {
		t.Error("UnmarshalText accepted an unknown class")
	}
	if Class(200).String() != "Uncategorized" {
		t.Error("out-of-range class has a name")
	}
}
