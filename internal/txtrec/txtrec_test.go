package txtrec

import (
	"reflect"
	"testing"
)

func TestSelect(t *testing.T) {
	for _, c := range []struct {
		txts []string
		want string
		n    int
	}{
		{[]string{"v=spf1 -all", "v=STSv1; id=1"}, "v=STSv1; id=1", 1},
		{[]string{"v=STSv1 ; id=1"}, "v=STSv1 ; id=1", 1},
		{[]string{"v=STSv1"}, "v=STSv1", 1},
		{[]string{"v=STSv10; id=1", "xv=STSv1; id=1"}, "", 0},
		{[]string{"v=STSv1; id=1", "v=STSv1; id=2"}, "v=STSv1; id=2", 2},
	} {
		got, n := Select(c.txts, "v=STSv1")
		if n != c.n || (n == 1 && got != c.want) {
			t.Errorf("Select(%q) = %q, %d; want %q, %d", c.txts, got, n, c.want, c.n)
		}
	}
}

func TestFields(t *testing.T) {
	for _, c := range []struct {
		txt  string
		want []Field
		ok   bool
	}{
		{"v=X; a=1; b=2", []Field{{"a", "1"}, {"b", "2"}}, true},
		{"v=X;a=1;", []Field{{"a", "1"}}, true},
		{"v=X \t; a = 1 ", []Field{{"a ", " 1"}}, true},
		{"v=X", nil, true},
		{"v=Xa=1", nil, false},
		{"v=X;;a=1", nil, false},
		{"v=X; a", nil, false},
		{"v=X;", nil, false},
		{"w=X; a=1", nil, false},
	} {
		got, ok := Fields(c.txt, "v=X")
		if ok != c.ok || (ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("Fields(%q) = %q, %v; want %q, %v", c.txt, got, ok, c.want, c.ok)
		}
	}
}

func TestExtSyntax(t *testing.T) {
	for s, want := range map[string]bool{"ext": true, "a_b-c.d": true, "_x": false, "": false,
		"abcdefghijabcdefghijabcdefghijab": true, "abcdefghijabcdefghijabcdefghijabc": false} {
		if IsExtName(s) != want {
			t.Errorf("IsExtName(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"v:1/x": true, "": false, "a b": false, "a;b": false, "a=b": false, "é": false} {
		if IsExtValue(s) != want {
			t.Errorf("IsExtValue(%q) = %v", s, !want)
		}
	}
}
