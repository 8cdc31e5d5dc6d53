package kmod

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencyBudget keeps this PID 1 code small: the standard library
// and golang.org/x/sys/unix only.
func TestDependencyBudget(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			first := strings.Split(p, "/")[0]
			if strings.Contains(first, ".") && p != "golang.org/x/sys/unix" {
				t.Errorf("%s imports %s; kmod may use only the standard library and golang.org/x/sys/unix", f, p)
			}
		}
	}
}
