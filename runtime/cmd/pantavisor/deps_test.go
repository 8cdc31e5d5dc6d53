package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the daemon lean (STYLE 22): packages it must never pull in.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{"testing", "net/http/pprof", "expvar", "html/template", "text/template",
		"github.com/sirupsen/logrus", "github.com/u-root/", "github.com/diskfs/", "gopkg.in/yaml"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("pantavisor depends on %s", dep)
			}
		}
	}
}
