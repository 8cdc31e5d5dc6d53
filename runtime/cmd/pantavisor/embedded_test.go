package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestModprobePath(t *testing.T) {
	for _, c := range []struct {
		name  string
		links []string
		want  string
	}{
		{"kernel default is there", []string{"sbin/modprobe", "usr/bin/modprobe"}, ""},
		{"only /usr/bin/modprobe", []string{"usr/bin/modprobe"}, "/usr/bin/modprobe\n"},
		{"no applet link", nil, ""},
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "proc/sys/kernel"), 0o755)
		for _, l := range c.links {
			os.MkdirAll(filepath.Dir(filepath.Join(root, l)), 0o755)
			os.WriteFile(filepath.Join(root, l), nil, 0o755)
		}
		modprobePath(slog.New(slog.DiscardHandler), root)
		got, _ := os.ReadFile(filepath.Join(root, "proc/sys/kernel/modprobe"))
		if string(got) != c.want {
			t.Errorf("%s: /proc/sys/kernel/modprobe = %q, want %q", c.name, got, c.want)
		}
	}
}
