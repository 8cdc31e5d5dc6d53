package bootloader

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		rev, try, trying string
		want             Choice
	}{
		{"", "", "", Choice{"0", ""}},
		{"3", "", "", Choice{"3", ""}},
		{"3", "", "4", Choice{"3", ""}},   // no try pending: a stale latch is cleared
		{"3", "4", "", Choice{"4", "4"}},  // first try
		{"3", "4", "4", Choice{"3", ""}},  // try did not commit: roll back
		{"3", "5", "4", Choice{"5", "5"}}, // a newer try replaces a stale latch
		{"0", "locals/a", "", Choice{"locals/a", "locals/a"}},
	} {
		if got := Choose(tc.rev, tc.try, tc.trying); got != tc.want {
			t.Errorf("Choose(%q, %q, %q) = %+v, want %+v", tc.rev, tc.try, tc.trying, got, tc.want)
		}
	}
}

func TestUbootFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "boot", "uboot.txt")
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte("pv_rev=0\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := OpenUbootFile(path)
	if v, _ := u.Get(VarRev); v != "0" {
		t.Fatalf("Get(pv_rev) = %q, want 0", v)
	}
	// The boot script's latch must survive setting pv_try (upstream's
	// prefix match dropped it).
	if err := u.Set(VarTrying, "1"); err != nil {
		t.Fatal(err)
	}
	if err := u.Set(VarTry, "1"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) != bootenv.UbootTxtSize {
		t.Errorf("len(uboot.txt) = %d, want %d", len(b), bootenv.UbootTxtSize)
	}
	want := "pv_rev=0\x00pv_trying=1\x00pv_try=1\x00\x00"
	if !bytes.HasPrefix(b, []byte(want)) {
		t.Errorf("uboot.txt = %q, want prefix %q", b[:40], want)
	}
	if err := u.Unset(VarTry); err != nil {
		t.Fatal(err)
	}
	if v, _ := u.Get(VarTry); v != "" {
		t.Errorf("Get(pv_try) after Unset = %q", v)
	}
	b, _ = os.ReadFile(path)
	if !bytes.HasPrefix(b, []byte("pv_rev=0\x00pv_trying=1\x00pv_try=\x00\x00")) {
		t.Errorf("uboot.txt after unset = %q", b[:40])
	}
	if err := u.Set("bad=key", "x"); err == nil {
		t.Error("Set(bad=key) succeeded")
	}
	if err := u.Set(VarTry, strings.Repeat("x", 2000)); err == nil {
		t.Error("Set of a value beyond the readable KiB succeeded")
	}
	if v, _ := u.Get(VarRev); v != "0" {
		t.Errorf("env damaged by a rejected Set: pv_rev = %q", v)
	}
}

func TestGrub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grubenv")
	g, err := OpenGrub(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) != bootenv.GrubSize || !bytes.HasPrefix(b, []byte(bootenv.GrubHeader)) {
		t.Fatalf("fresh grubenv: %d bytes, %q", len(b), b[:30])
	}
	if err := g.Set(VarRev, "0"); err != nil {
		t.Fatal(err)
	}
	if err := g.Set(VarTry, "1"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	want := bootenv.GrubHeader + "pv_rev=0\npv_try=1\n" + strings.Repeat("#", bootenv.GrubSize-len(bootenv.GrubHeader)-18)
	if string(b) != want {
		t.Errorf("grubenv = %q, want %q", b, want)
	}
	// a key the GRUB script wrote survives our rewrites
	b = bytes.Replace(b, []byte("pv_try=1\n##########"), []byte("pv_try=1\npv_trying=1\n"), 1)
	os.WriteFile(path, b, 0o644)
	if err := g.Unset(VarTry); err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Get(VarTrying); v != "1" {
		t.Errorf("pv_trying = %q after our write, want 1", v)
	}
	if err := g.Set("big", strings.Repeat("x", 2000)); err == nil {
		t.Error("Set beyond the 1 KiB block succeeded")
	}
	// a broken header is reset on open
	os.WriteFile(path, []byte("garbage"), 0o644)
	if _, err := OpenGrub(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(b) != bootenv.GrubSize {
		t.Errorf("reset grubenv is %d bytes, want %d", len(b), bootenv.GrubSize)
	}
}

// TestGrubEditenv checks both directions against GRUB's own tool.
func TestGrubEditenv(t *testing.T) {
	tool, err := exec.LookPath("grub-editenv")
	if err != nil {
		testenv.Skipf(t, "grub-editenv not installed (Debian grub-common)")
	}
	path := filepath.Join(t.TempDir(), "grubenv")
	run := func(args ...string) string {
		out, err := exec.Command(tool, append([]string{path}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grub-editenv %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	run("create")
	run("set", "pv_rev=4", "pv_trying=5", "other=a b")
	g, err := OpenGrub(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Set(VarTry, "5"); err != nil {
		t.Fatal(err)
	}
	got := run("list")
	for _, want := range []string{"pv_rev=4\n", "pv_trying=5\n", "other=a b\n", "pv_try=5\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("grub-editenv list = %q, missing %q", got, want)
		}
	}
	if v, _ := g.Get("other"); v != "a b" {
		t.Errorf("Get(other) = %q", v)
	}
}

// fakeMTD writes a /proc/mtd naming regular files as partitions.
func fakeMTD(t *testing.T, dir string, parts map[string]int64) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("dev:    size   erasesize  name\n")
	names := make([]string, 0, len(parts))
	for n := range parts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(dir, n+".mtd")
		if err := os.WriteFile(p, bytes.Repeat([]byte{0xff}, int(parts[n])), 0o644); err != nil {
			t.Fatal(err)
		}
		b.WriteString(p + ": " + strings.TrimPrefix(hex8(parts[n]), "0x") + " 00010000 \"" + n + "\"\n")
	}
	proc := filepath.Join(dir, "mtd")
	os.WriteFile(proc, []byte(b.String()), 0o644)
	return proc
}

func hex8(n int64) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		out[i] = digits[n&15]
		n >>= 4
	}
	return string(out)
}

func TestUbootMTD(t *testing.T) {
	dir := t.TempDir()
	proc := fakeMTD(t, dir, map[string]int64{"pv-env": 0x10000})
	os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
	os.WriteFile(filepath.Join(dir, "boot", "uboot.txt"), []byte("pv_rev=0\x00\x00"), 0o644)

	// latch in the MTD, variables in uboot.txt: flush erases the latch
	env, err := openUboot(Options{Storage: dir, MTDEnv: "pv-env", ProcMTD: proc})
	if err != nil {
		t.Fatal(err)
	}
	m := env.(*ubootMTD)
	m.dev.Write([]byte("pv_trying=1\x00\x00"))
	if err := env.Set(VarTry, "1"); err != nil {
		t.Fatal(err)
	}
	if err := env.Flush(); err != nil {
		t.Fatal(err)
	}
	b, _ := m.dev.Read()
	if b[0] != 0xff {
		t.Errorf("MTD not erased by Flush: %q", b[:16])
	}
	if v, _ := env.Get(VarTry); v != "1" {
		t.Errorf("pv_try = %q, want 1 (kept in uboot.txt)", v)
	}

	// MTD only: everything in the partition
	env, err = openUboot(Options{Storage: dir, MTDEnv: "pv-env", MTDOnly: true, ProcMTD: proc})
	if err != nil {
		t.Fatal(err)
	}
	env.Set(VarRev, "3")
	env.Set(VarTrying, "4")
	env.Set(VarTry, "4")
	env.Flush()
	for k, want := range map[string]string{VarRev: "3", VarTry: "4", VarTrying: ""} {
		if v, _ := env.Get(k); v != want {
			t.Errorf("MTD-only Get(%s) = %q, want %q", k, v, want)
		}
	}
	if _, err := openUboot(Options{Storage: dir, MTDEnv: "nope", MTDOnly: true, ProcMTD: proc}); err == nil {
		t.Error("MTD-only with a missing partition opened")
	}
}

func TestBootloaderFlow(t *testing.T) {
	dir := t.TempDir()
	var hooks []string
	o := Options{Type: "grub", Storage: dir, Cmdline: "console=ttyS0 pv_rev=0",
		Hooks: func(h string) error { hooks = append(hooks, h); return nil }}
	bl, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if bl.Rev() != "0" || bl.Done() != "0" || bl.UpdateInProgress() {
		t.Fatalf("fresh: rev %q done %q in progress %v", bl.Rev(), bl.Done(), bl.UpdateInProgress())
	}
	if force, err := bl.Install("1", filepath.Join(dir, "trails", "1")); err != nil || force {
		t.Fatalf("Install = %v, %v", force, err)
	}
	// the boot after: the script boots pv_try
	o.Cmdline = "pv_rev=1 pv_try=1"
	bl, _ = Open(o)
	if !bl.TryingUpdate() || bl.Try() != "1" || bl.Done() != "0" {
		t.Fatalf("trying boot: trying %v try %q done %q", bl.TryingUpdate(), bl.Try(), bl.Done())
	}
	if err := bl.PreCommit("1"); err != nil {
		t.Fatal(err)
	}
	if err := bl.PostCommit(); err != nil {
		t.Fatal(err)
	}
	bl, _ = Open(o)
	if bl.UpdateInProgress() || bl.Done() != "1" {
		t.Errorf("after commit: in progress %v done %q", bl.UpdateInProgress(), bl.Done())
	}
	if want := []string{"system-install-update", "system-boot-done"}; !slices.Equal(hooks, want) {
		t.Errorf("hooks = %v, want %v", hooks, want)
	}
	// a failed try on the rolled-back boot
	bl.Install("2", "")
	o.Cmdline = "pv_rev=1"
	bl, _ = Open(o)
	if bl.TryingUpdate() || !bl.UpdateInProgress() {
		t.Fatalf("rolled-back boot: trying %v in progress %v", bl.TryingUpdate(), bl.UpdateInProgress())
	}
	if err := bl.Fail(); err != nil {
		t.Fatal(err)
	}
	if bl, _ = Open(o); bl.UpdateInProgress() {
		t.Error("pv_try still set after Fail")
	}
	if _, err := Open(Options{Type: "lilo", Storage: dir}); err == nil {
		t.Error("Open(lilo) succeeded")
	}
}

// TestGrubWritesInPlace checks that grubenv keeps its inode: GRUB reads
// the storage without replaying the ext4 journal, so only an in-place
// rewrite is visible to it right after a sync.
func TestGrubWritesInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grubenv")
	g, err := OpenGrub(path)
	if err != nil {
		t.Fatal(err)
	}
	ino := func() uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	before := ino()
	if err := g.Set("pv_try", "1"); err != nil {
		t.Fatal(err)
	}
	if err := g.Unset("pv_try"); err != nil {
		t.Fatal(err)
	}
	if err := g.Set("pv_rev", "1"); err != nil {
		t.Fatal(err)
	}
	if after := ino(); after != before {
		t.Errorf("grubenv inode = %d after Set, want %d (rewritten in place)", after, before)
	}
	if v, err := g.Get("pv_rev"); err != nil || v != "1" {
		t.Errorf("Get(pv_rev) = %q, %v, want 1", v, err)
	}
	if fi, _ := os.Stat(path); fi.Size() != bootenv.GrubSize {
		t.Errorf("grubenv size = %d, want %d", fi.Size(), bootenv.GrubSize)
	}
}

// TestUbootWritesInPlace: uboot.txt, as mkimage makes it (64 KiB), keeps
// its inode through Set and Unset: U-Boot's ext4 reader does not replay
// the journal, so a file replaced by rename could still read as the old
// one when the device reboots (or loses power) before a checkpoint.
func TestUbootWritesInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uboot.txt")
	factory, err := bootenv.EncodeNul(bootenv.Vars{{Key: VarRev, Value: "0"}}, bootenv.UbootTxtSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, factory, 0o644); err != nil {
		t.Fatal(err)
	}
	ino := func() uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	before := ino()
	u := OpenUbootFile(path)
	if err := u.Set(VarTry, "1"); err != nil {
		t.Fatal(err)
	}
	if err := u.Set(VarRev, "1"); err != nil {
		t.Fatal(err)
	}
	if err := u.Unset(VarTry); err != nil {
		t.Fatal(err)
	}
	if after := ino(); after != before {
		t.Errorf("uboot.txt inode = %d after Set, want %d (rewritten in place)", after, before)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) != bootenv.UbootTxtSize || !bytes.HasPrefix(b, []byte("pv_rev=1\x00pv_try=\x00\x00")) {
		t.Errorf("uboot.txt = %q (%d bytes), %v; want pv_rev=1, pv_try= in 64 KiB", b[:min(len(b), 40)], len(b), err)
	}
}
