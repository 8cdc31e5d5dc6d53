package rootfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// GoBinary builds the Go package pkg (an import path or a directory relative
// to dir) as a static binary (CGO_ENABLED=0) and returns its bytes, ready to be
// added to an image as a File with mode 0755.
func GoBinary(dir, pkg string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "pv-gobin-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("read built %s: %w", pkg, err)
	}
	return data, nil
}

// Helper returns the static pvhelper binary (testdata/pvhelper): an HTTP
// client over unix sockets for tests that call pv-ctrl from inside a
// container. Add it as File{Path: "/bin/pvhelper", Mode: 0o755, Data: …}.
func Helper() ([]byte, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return nil, fmt.Errorf("locate pvhelper source: no caller info")
	}
	return GoBinary(filepath.Join(filepath.Dir(self), "testdata", "pvhelper"), ".")
}
