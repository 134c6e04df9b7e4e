package bounce

import (
	"reflect"
	"testing"
)

func TestRequiredLiterals(t *testing.T) {
	tests := []struct {
		pattern string
		want    [][]string
	}{
		{`user unknown`, [][]string{{"user unknown"}}},
		{`\bmailbox\b.{0,20}\bfull\b`, [][]string{{"mailbox"}, {"full"}}},
		{`(user|recipient) (unknown|not found)`, [][]string{{"user", "recipient"}, {"unknown", "not found"}}},
		{`^550 5\.1\.1 `, [][]string{{"550 5.1.1 "}}},
		{`(USER)+ x?`, [][]string{{"user"}}},
		{`a|bc`, nil},                             // too short to filter
		{`(foo)?bar*`, nil},                       // "ba" is all that is required: too short
		{`spam|.*`, nil},                          // one branch requires nothing
		{`über alles`, [][]string{{"ber alles"}}}, // the ASCII run only
		{`(?-i)ABC(def){2}`, [][]string{{"abc"}, {"def"}}},
	}
	for _, tc := range tests {
		got := literalsOf("(?i)" + tc.pattern)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.pattern, got, tc.want)
		}
	}
}

func TestFoldText(t *testing.T) {
	got := string(foldText(nil, []byte("User ſK Ünknown\xff")))
	if want := "user sk Ünknown\xff"; got != want {
		t.Errorf("foldText = %q, want %q", got, want)
	}
}
