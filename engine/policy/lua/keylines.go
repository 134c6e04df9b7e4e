package lua

import (
	"bytes"
	"reflect"

	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// keyPos is one key written in a table constructor: name = value.
type keyPos struct {
	key  string
	line int
}

// keyLines maps the line a table constructor starts on to the keys written
// in it and in the tables nested in it, in order, so that a problem with a
// key of a configuration call is reported at the key's own line: the call
// kumo.configure_queue { … } runs at the line its table starts on.
type keyLines map[int][]keyPos

// scanKeyLines parses src and returns its keyLines; nil when src does not
// parse (the compiler then reports why).
func scanKeyLines(src []byte, name string) keyLines {
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		return nil
	}
	kl := keyLines{}
	kl.walk(reflect.ValueOf(chunk), 0)
	return kl
}

var tableExprType = reflect.TypeOf((*ast.TableExpr)(nil))

// walk visits every node below v; owner is the line of the outermost
// table constructor v lies in (0: none).
func (kl keyLines) walk(v reflect.Value, owner int) {
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			kl.walk(v.Elem(), owner)
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.Type() == tableExprType {
			t := v.Interface().(*ast.TableExpr)
			if owner == 0 {
				owner = t.Line()
			}
			for _, f := range t.Fields {
				if k, ok := f.Key.(*ast.StringExpr); ok && k.Line() > 0 {
					kl[owner] = append(kl[owner], keyPos{k.Value, k.Line()})
				}
				kl.walk(reflect.ValueOf(f.Value), owner)
			}
			return
		}
		kl.walk(v.Elem(), owner)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				kl.walk(v.Field(i), owner)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			kl.walk(v.Index(i), owner)
		}
	}
}

// line returns the line of key in the table the call at line call was
// given (call when it is not found: a table built elsewhere).
func (kl keyLines) line(call int, key string) int {
	for _, k := range kl[call] {
		if k.key == key {
			return k.line
		}
	}
	return call
}
