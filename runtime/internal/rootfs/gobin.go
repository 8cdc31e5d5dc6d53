package rootfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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
// The binary is cached in cacheDir ("" = the image cache) by source and Go
// version, so only the first test run pays for the build.
func Helper(cacheDir string) ([]byte, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return nil, fmt.Errorf("locate pvhelper source: no caller info")
	}
	src := filepath.Join(filepath.Dir(self), "testdata", "pvhelper")
	code, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		return nil, fmt.Errorf("read pvhelper source: %w", err)
	}
	if cacheDir == "" {
		cacheDir = defaultCache()
	}
	sum := sha256.Sum256(append(code, runtime.Version()...))
	cached := filepath.Join(cacheDir, "pvhelper-"+hex.EncodeToString(sum[:8]))
	if data, err := os.ReadFile(cached); err == nil {
		return data, nil
	}
	data, err := GoBinary(src, ".")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err == nil {
		tmp := cached + ".tmp" + strconv.Itoa(os.Getpid())
		if os.WriteFile(tmp, data, 0o755) == nil {
			_ = os.Rename(tmp, cached)
		}
	}
	return data, nil
}
