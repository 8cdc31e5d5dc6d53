package pvtest

import (
	"errors"
	"testing"
)

func TestJSONGet(t *testing.T) {
	doc := `{"pantavisor.status":"WAIT","n":5,"o":{"a":[1,{"b":null}]},"l":[{"name":"locals/a","status":"NEW"},{"name":"0","status":"DONE"}]}`
	tests := []struct {
		path string
		want string
		err  error
	}{
		{"pantavisor.status", "WAIT", nil},
		{"n", "5", nil},
		{"o", `{"a":[1,{"b":null}]}`, nil},
		{"o/a/1/b", "null", nil},
		{"l/[name=locals/a]/status", "NEW", nil},
		{"l/1/name", "0", nil},
		{"missing", "", ErrNoValue},
		{"l/2", "", ErrNoValue},
		{"l/[name=x]", "", ErrNoValue},
		{"l/[name]", "", ErrNoValue},
		{"n/x", "", ErrNoValue},
	}
	for _, tt := range tests {
		got, err := JSONGet([]byte(doc), tt.path)
		if !errors.Is(err, tt.err) {
			t.Errorf("JSONGet(%q) error = %v, want %v", tt.path, err, tt.err)
			continue
		}
		if got != tt.want {
			t.Errorf("JSONGet(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if got, _ := JSONGet([]byte(`[{"name":"a"}]`), "[name=a]/name"); got != "a" {
		t.Errorf("JSONGet(top-level selector) = %q, want a", got)
	}
	if _, err := JSONGet([]byte(`{`), ""); err == nil {
		t.Errorf("JSONGet(bad JSON) error = nil")
	}
}

func FuzzJSONGet(f *testing.F) {
	f.Add([]byte(`{"a":[{"name":"x","v":1}]}`), "a/[name=x]/v")
	f.Add([]byte(`[1,2]`), "1")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		JSONGet(data, path) // must not panic
	})
}
