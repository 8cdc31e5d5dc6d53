package volume

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// BenchmarkMountPlatform mounts and unmounts a squashfs root volume with a
// boot overlay and a config overlay, as a platform start does.
func BenchmarkMountPlatform(b *testing.B) {
	if os.Geteuid() != 0 {
		testenv.Skipf(b, "skipping: mounting needs root")
	}
	img := fixture(b)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "_config", "app", "etc")
	os.MkdirAll(cfg, 0o755)
	os.WriteFile(filepath.Join(cfg, "motd"), []byte("hi"), 0o644)
	data, _ := os.ReadFile(img)
	os.WriteFile(filepath.Join(dir, "root.squashfs"), data, 0o644)
	l := Layout{VolumesDir: filepath.Join(dir, "v"), DisksDir: filepath.Join(dir, "d"), ConfigsDir: filepath.Join(dir, "c")}
	p := Platform{Name: "app", Dir: dir, Volumes: []string{"root.squashfs"}, Storage: map[string]Persistence{"lxc-overlay": Boot}, ConfigDir: filepath.Join(dir, "_config", "app")}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := MountPlatform(log, l, p)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Unmount(); err != nil {
			b.Fatal(err)
		}
	}
}
