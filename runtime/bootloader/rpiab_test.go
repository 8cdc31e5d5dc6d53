package bootloader

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// fatImage makes a FAT filesystem image file holding files, with the
// tools a firmware partition is made with.
func fatImage(t *testing.T, path string, files map[string]string) {
	t.Helper()
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not installed (Debian dosfstools, mtools)", tool)
		}
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 8<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", "-n", "PVBOOT", path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v: %s", err, out)
	}
	parts := DiskPartitions{Device: func(int) string { return path }}
	for name, content := range files {
		if err := parts.WriteFile(0, name, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
}

type recMailbox struct{ armed []bool }

func (m *recMailbox) SetTryboot(on bool) error { m.armed = append(m.armed, on); return nil }

func TestRPiAB(t *testing.T) {
	dir := t.TempDir()
	dev := func(n int) string { return filepath.Join(dir, "p"+strconv.Itoa(n)+".img") }
	fatImage(t, dev(1), map[string]string{"autoboot.txt": string(bootenv.Autoboot(2, 3))})
	fatImage(t, dev(2), map[string]string{"kernel8.img": "A"})
	fatImage(t, dev(3), map[string]string{"kernel8.img": "B"})

	// the new revision's boot image, as the BSP ships it: gzipped FAT
	trail := filepath.Join(dir, "trails", "1")
	os.MkdirAll(filepath.Join(trail, ".pv"), 0o755)
	fatImage(t, filepath.Join(dir, "new.img"), map[string]string{"kernel8.img": "NEW"})
	raw, _ := os.ReadFile(filepath.Join(dir, "new.img"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	os.WriteFile(filepath.Join(trail, ".pv", "rpiboot.img.gz"), gz.Bytes(), 0o644)

	mbox := &recMailbox{}
	tryboot := filepath.Join(dir, "tryboot")
	os.WriteFile(tryboot, []byte{0, 0, 0, 0}, 0o644)
	o := Options{Type: "rpiab", Storage: dir, RPi: &RPiOptions{Parts: DiskPartitions{Device: dev}, Mailbox: mbox, TrybootPath: tryboot}}
	bl, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if force, err := bl.Install("1", trail); err != nil || force {
		t.Fatalf("Install = %v, %v", force, err)
	}
	parts := DiskPartitions{Device: dev}
	if k, _ := parts.ReadFile(3, "kernel8.img"); string(k) != "NEW" {
		t.Errorf("try partition kernel = %q, want NEW", k)
	}
	if l, _ := parts.ReadFile(3, rpiRevFile); string(l) != "1" {
		t.Errorf("pv_rev.txt = %q, want 1", l)
	}
	if len(mbox.armed) != 1 || !mbox.armed[0] {
		t.Errorf("tryboot armed = %v", mbox.armed)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "boot", "rpiab.txt"))
	if len(env) != bootenv.RPiABSize || !bytes.HasPrefix(env, []byte("pv_try=1\x00\x00")) {
		t.Errorf("rpiab.txt = %q (%d bytes)", env[:20], len(env))
	}

	// a stacked non-reboot update lists both revisions
	trail2 := filepath.Join(dir, "trails", "2")
	os.MkdirAll(filepath.Join(trail2, ".pv"), 0o755)
	os.WriteFile(filepath.Join(trail2, ".pv", "rpiboot.img"), raw, 0o644)
	if _, err := bl.Install("2", trail2); err != nil {
		t.Fatal(err)
	}
	// InstallUpdate rewrote the partition, so the list comes from before the write
	if l, _ := parts.ReadFile(3, rpiRevFile); string(l) != "1,2" {
		t.Errorf("stacked pv_rev.txt = %q, want 1,2", l)
	}

	// booted by tryboot: validation against the try partition's list
	os.WriteFile(tryboot, []byte{0, 0, 0, 1}, 0o644)
	r := bl.Env().(*RPiAB)
	if err := r.Validate("0", "2"); err != nil {
		t.Errorf("Validate(try 2) = %v", err)
	}
	if err := r.Validate("0", "7"); err == nil {
		t.Error("Validate(try 7) passed, 7 is not listed")
	}

	if err := bl.PreCommit("2"); err != nil {
		t.Fatal(err)
	}
	if err := bl.PostCommit(); err != nil {
		t.Fatal(err)
	}
	ab, _ := parts.ReadFile(1, rpiAutoboot)
	if boot, try, _ := bootenv.ParseAutoboot(ab); boot != 3 || try != 2 {
		t.Errorf("autoboot after commit: boot %d try %d, want 3 2", boot, try)
	}
	if l, _ := parts.ReadFile(3, rpiRevFile); string(l) != "2" {
		t.Errorf("committed pv_rev.txt = %q, want 2", l)
	}
	os.WriteFile(tryboot, []byte{0, 0, 0, 0}, 0o644)
	if err := r.Validate("2", ""); err != nil {
		t.Errorf("Validate(normal boot of 2) = %v", err)
	}
}

// TestRPiABBootedRevision: the firmware passes no pv_rev; a boot of the
// [tryboot] partition runs pv_try, any other boot pv_rev. (Before, the
// revision came from the command line alone: a tried update looked like
// a rolled-back one and never committed.)
func TestRPiABBootedRevision(t *testing.T) {
	dir := t.TempDir()
	dev := func(n int) string { return filepath.Join(dir, "p"+strconv.Itoa(n)+".img") }
	fatImage(t, dev(1), map[string]string{"autoboot.txt": string(bootenv.Autoboot(2, 3))})
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	env, _ := bootenv.EncodeNul(bootenv.Vars{{Key: "pv_rev", Value: "4"}, {Key: "pv_try", Value: "5"}}, bootenv.RPiABSize, 0)
	os.WriteFile(filepath.Join(dir, "boot", "rpiab.txt"), env, 0o644)
	// the firmware's device tree in a test root
	root := filepath.Join(dir, "root")
	tb := filepath.Join(root, TrybootFile)
	os.MkdirAll(filepath.Dir(tb), 0o755)
	for _, c := range []struct {
		flag   byte
		rev    string
		trying bool
	}{{1, "5", true}, {0, "4", false}} {
		os.WriteFile(tb, []byte{0, 0, 0, c.flag}, 0o644)
		bl, err := Open(Options{Type: "rpiab", Storage: dir, RPi: &RPiOptions{Parts: DiskPartitions{Device: dev}, Mailbox: &recMailbox{}, Root: root}})
		if err != nil {
			t.Fatal(err)
		}
		if bl.Rev() != c.rev || bl.TryingUpdate() != c.trying {
			t.Errorf("tryboot=%d: Rev() = %q, TryingUpdate() = %v; want %q, %v", c.flag, bl.Rev(), bl.TryingUpdate(), c.rev, c.trying)
		}
	}
}

// TestRPiABNoPath: Pantavisor runs as PID 1 without PATH (the kernel sets
// none for init); the FAT edits still find mcopy. (Before, the rpiab
// backend failed at boot: exec: "mcopy": executable file not found.)
func TestRPiABNoPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p1.img")
	fatImage(t, p, map[string]string{"autoboot.txt": string(bootenv.Autoboot(2, 3))})
	if _, err := os.Stat("/usr/bin/mcopy"); err != nil {
		t.Skip("no /usr/bin/mcopy")
	}
	t.Setenv("PATH", "")
	got, err := DiskPartitions{Device: func(int) string { return p }}.ReadFile(1, "autoboot.txt")
	if err != nil || string(got) != string(bootenv.Autoboot(2, 3)) {
		t.Errorf("ReadFile without PATH = %q, %v", got, err)
	}
}
