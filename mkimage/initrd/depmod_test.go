package initrd

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/kmod"
)

// fakeModule is a minimal ELF64 relocatable file whose .modinfo section
// holds info (key=value records), which is all depmod reads.
func fakeModule(t *testing.T, path string, info ...string) {
	t.Helper()
	modinfo := []byte(strings.Join(info, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, ehsize)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le.PutUint16(hdr[16:], 1)    // ET_REL
	le.PutUint16(hdr[18:], 0x3e) // x86-64
	le.PutUint32(hdr[20:], 1)
	shoff := ehsize + len(modinfo) + len(shstr)
	le.PutUint64(hdr[40:], uint64(shoff))
	le.PutUint16(hdr[52:], ehsize)
	le.PutUint16(hdr[58:], shentsize)
	le.PutUint16(hdr[60:], 3) // sections
	le.PutUint16(hdr[62:], 2) // .shstrtab index
	b.Write(hdr)
	b.Write(modinfo)
	b.Write(shstr)
	sh := func(name, typ uint32, off, size int) {
		s := make([]byte, shentsize)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		b.Write(s)
	}
	sh(0, 0, 0, 0)
	sh(1, 1, ehsize, len(modinfo))             // .modinfo, PROGBITS
	sh(10, 3, ehsize+len(modinfo), len(shstr)) // .shstrtab, STRTAB
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIndexFiles(t *testing.T) {
	dir := t.TempDir()
	fakeModule(t, filepath.Join(dir, "kernel/fs/overlayfs/overlay.ko"), "alias=fs-overlay", "license=GPL", "depends=")
	fakeModule(t, filepath.Join(dir, "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko"),
		"alias=pci:v00008086d000010D3sv*sd*bc*sc*i*", "alias=pci:v00008086d0000105Esv*sd*bc*sc*i*", "depends=ptp")
	fakeModule(t, filepath.Join(dir, "kernel/drivers/ptp/ptp.ko"), "depends=")
	fakeModule(t, filepath.Join(dir, "kernel/fs/ext4/ext4.ko"), "softdep=pre: crc32c", "alias=fs-ext4", "alias=ext3", "depends=")
	if err := WriteIndexFiles(dir); err != nil {
		t.Fatal(err)
	}
	alias, _ := os.ReadFile(filepath.Join(dir, "modules.alias"))
	want := `# Aliases extracted from modules themselves.
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias pci:v00008086d0000105Esv*sd*bc*sc*i* e1000e
alias fs-ext4 ext4
alias ext3 ext4
alias fs-overlay overlay
`
	if string(alias) != want {
		t.Errorf("modules.alias = %q, want %q", alias, want)
	}
	softdep, _ := os.ReadFile(filepath.Join(dir, "modules.softdep"))
	if want := "# Soft dependencies extracted from modules themselves.\nsoftdep ext4 pre: crc32c\n"; string(softdep) != want {
		t.Errorf("modules.softdep = %q, want %q", softdep, want)
	}
	// Just the initrd's files.
	idx, err := IndexFiles(dir, []string{"kernel/fs/overlayfs/overlay.ko"})
	if err != nil || string(idx["modules.alias"]) != "# Aliases extracted from modules themselves.\nalias fs-overlay overlay\n" {
		t.Errorf("IndexFiles(overlay) = %q, %v", idx["modules.alias"], err)
	}
	// What runtime/kmod makes of it.
	_, dep, err := Depmod(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "modules.dep"), dep, 0o644)
	x, err := kmod.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, _, err := x.Lookup("pci:v00008086d0000105Esv00008086sd0000115Ebc02sc00i00")
	if plan := x.Plan(mods); err != nil || !reflect.DeepEqual(plan, []string{"kernel/drivers/ptp/ptp.ko", "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko"}) {
		t.Errorf("kmod plan of the e1000e modalias = %v, %v", plan, err)
	}
	if _, err := IndexFiles(dir, []string{"nope.ko"}); err == nil {
		t.Errorf("IndexFiles(missing file) = nil error")
	}
}

// TestDebianKernel runs depmod on the Debian kernel mkimage unpacked (when
// a build left one in the cache) and resolves what a PC needs with
// runtime/kmod, as the device will.
func TestDebianKernel(t *testing.T) {
	home, _ := os.UserHomeDir()
	dirs, _ := filepath.Glob(filepath.Join(home, ".cache/pantavisor-mkimage/unpacked/*/lib/modules/*-amd64"))
	var dir string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "kernel")); err == nil {
			dir = d
			break
		}
	}
	if dir == "" {
		// Needs a previous image build's cache, which CI fills only after
		// the Go tests: not a missing tool.
		t.Skip("no unpacked Debian amd64 kernel in the mkimage cache")
	}
	// Work on a copy of the index files only: the cache is shared.
	out := t.TempDir()
	start := time.Now()
	_, dep, err := Depmod(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := IndexFiles(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: depmod + index files in %v; modules.dep %d KiB, modules.alias %d KiB", dir, time.Since(start).Round(time.Millisecond), len(dep)>>10, len(idx["modules.alias"])>>10)
	os.WriteFile(filepath.Join(out, "modules.dep"), dep, 0o644)
	for n, b := range idx {
		os.WriteFile(filepath.Join(out, n), b, 0o644)
	}
	for _, n := range []string{"modules.builtin", "modules.builtin.modinfo"} {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			os.WriteFile(filepath.Join(out, n), b, 0o644)
		}
	}
	x, err := kmod.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
	}{
		{"pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", "e1000e"}, // qemu -device e1000e
		{"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", "e1000"},  // qemu -device e1000
		{"virtio:d00000001v00001AF4", "virtio_net"},
		{"fs-overlay", "overlay"},
		{"fs-btrfs", "btrfs"},
		{"net-pf-40", "hv_sock"}, // and the other transports, as modprobe
	} {
		mods, _, err := x.Lookup(c.name)
		if err != nil || len(mods) == 0 || mods[0] != c.want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", c.name, mods, err, c.want)
		}
	}
	if _, builtin, err := x.Lookup("fs-tracefs"); !builtin || err != nil {
		t.Errorf("Lookup(fs-tracefs) = builtin %v, %v; want built in", builtin, err)
	}
	plan := x.Plan([]string{"virtio_net"})
	if len(plan) < 2 || !strings.HasSuffix(plan[len(plan)-1], "/virtio_net.ko") {
		t.Errorf("Plan(virtio_net) = %v, want its dependencies then virtio_net.ko", plan)
	}
}

func BenchmarkLookupDebianModalias(b *testing.B) {
	home, _ := os.UserHomeDir()
	dirs, _ := filepath.Glob(filepath.Join(home, ".cache/pantavisor-mkimage/unpacked/*/lib/modules/*-amd64/kernel"))
	if len(dirs) == 0 {
		b.Skip("no unpacked Debian amd64 kernel")
	}
	dir := filepath.Dir(dirs[0])
	idx, err := IndexFiles(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	os.WriteFile(filepath.Join(out, "modules.dep"), nil, 0o644)
	os.WriteFile(filepath.Join(out, "modules.alias"), idx["modules.alias"], 0o644)
	start := time.Now()
	x, err := kmod.Open(out)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("kmod.Open of %d KiB modules.alias: %v", len(idx["modules.alias"])>>10, time.Since(start))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.LookupAlias("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	}
}
