package ubootbuild

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/ubootscr"
)

// elf32 writes a little-endian 32-bit MIPS executable with the given
// load segments (address → bytes) and entry point.
func elf32(t testing.TB, entry uint32, segs [][2]any) []byte {
	t.Helper()
	const ehsize, phsize = 52, 32
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, ehsize)
	copy(hdr, "\x7fELF\x01\x01\x01")
	le.PutUint16(hdr[16:], 2) // ET_EXEC
	le.PutUint16(hdr[18:], 8) // EM_MIPS
	le.PutUint32(hdr[20:], 1)
	le.PutUint32(hdr[24:], entry)
	le.PutUint32(hdr[28:], ehsize)
	le.PutUint16(hdr[40:], ehsize)
	le.PutUint16(hdr[42:], phsize)
	le.PutUint16(hdr[44:], uint16(len(segs)))
	b.Write(hdr)
	off := uint32(ehsize + phsize*len(segs))
	for _, s := range segs {
		addr, data := s[0].(uint32), s[1].([]byte)
		ph := make([]byte, phsize)
		le.PutUint32(ph[0:], 1) // PT_LOAD
		le.PutUint32(ph[4:], off)
		le.PutUint32(ph[8:], addr)
		le.PutUint32(ph[12:], addr)
		le.PutUint32(ph[16:], uint32(len(data)))
		le.PutUint32(ph[20:], uint32(len(data))+16) // bss
		b.Write(ph)
		off += uint32(len(data))
	}
	for _, s := range segs {
		b.Write(s[1].([]byte))
	}
	return b.Bytes()
}

func writeTemp(t testing.TB, data []byte) string {
	p := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLegacyKernel lays two segments out flat from the lowest address
// (the gap zeroed) with the ELF's entry, as bootm loads them.
func TestLegacyKernel(t *testing.T) {
	p := writeTemp(t, elf32(t, 0x810f0008, [][2]any{{uint32(0x810f0000), []byte("abcdefgh12345678")}, {uint32(0x810f0020), []byte("tail")}}))
	img, err := LegacyKernel(p, "Linux test", ubootscr.ArchMIPS, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	if be.Uint32(img[16:]) != 0x810f0000 || be.Uint32(img[20:]) != 0x810f0008 || img[30] != 2 {
		t.Errorf("header load %#x entry %#x type %d", be.Uint32(img[16:]), be.Uint32(img[20:]), img[30])
	}
	want := append(append([]byte("abcdefgh12345678"), make([]byte, 16)...), "tail"...)
	if got := img[ubootscr.HeaderSize:]; !bytes.Equal(got, want) {
		t.Errorf("data = %q, want %q", got, want)
	}
}

// TestLegacyKernelRefuses checks bad kernels get an error, not an image.
func TestLegacyKernelRefuses(t *testing.T) {
	for name, data := range map[string][]byte{
		"not elf":       []byte("MZ not an elf at all"),
		"entry outside": elf32(t, 0x80000000, [][2]any{{uint32(0x810f0000), []byte("code")}}),
		"overlap":       elf32(t, 0x810f0000, [][2]any{{uint32(0x810f0000), []byte("code1234")}, {uint32(0x810f0004), []byte("x")}}),
		"no segment":    elf32(t, 0x810f0000, nil),
		"huge gap":      elf32(t, 0x810f0000, [][2]any{{uint32(0x810f0000), []byte("code")}, {uint32(0xa0000000), []byte("far")}}),
	} {
		if _, err := LegacyKernel(writeTemp(t, data), "x", ubootscr.ArchMIPS, 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzLegacyKernel(f *testing.F) {
	f.Add(elf32(f, 0x810f0000, [][2]any{{uint32(0x810f0000), []byte("code")}}))
	f.Add([]byte("\x7fELF\x01\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := LegacyKernel(writeTemp(t, data), "x", ubootscr.ArchMIPS, 0)
		if err == nil && (len(img) <= ubootscr.HeaderSize || len(img) > ubootscr.HeaderSize+maxKernel) {
			t.Fatalf("image of %d bytes", len(img))
		}
	})
}

// TestCheckConfig fails a fragment setting that Kconfig dropped and
// accepts "is not set" for a symbol the configuration does not have.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, ".config")
	if err := os.WriteFile(config, []byte("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	frag := func(text string) string {
		p := filepath.Join(dir, "f.config")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := checkConfig(config, []string{frag("# comment\nCONFIG_A=y\n# CONFIG_B is not set\n# CONFIG_GONE is not set\nCONFIG_C=\"x\"\n")}); err != nil {
		t.Errorf("kept settings: %v", err)
	}
	for _, bad := range []string{"CONFIG_B=y\n", "CONFIG_MISSPELT=y\n", "# CONFIG_A is not set\n", "CONFIG_C=\"y\"\n"} {
		if err := checkConfig(config, []string{frag(bad)}); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", bad, err)
		}
	}
}

// TestNewest picks the highest version of apt-cache showsrc's stanzas.
func TestNewest(t *testing.T) {
	out := []byte("Package: u-boot\nVersion: 2023.01+dfsg-2\n\nPackage: u-boot\nVersion: 2023.01+dfsg-2+deb12u3\n\nVersion: 2022.04+dfsg-2\n")
	if got := newest(out); got != "2023.01+dfsg-2+deb12u3" {
		t.Errorf("newest = %q", got)
	}
}

// TestFragments lists the patches (applied first) before the configs,
// each kind in name order, and refuses a directory with neither.
func TestFragments(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.config", "a.config", "0002-x.patch", "0001-y.patch", "README"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := fragments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, filepath.Base(f.path))
	}
	if want := "0001-y.patch 0002-x.patch a.config b.config"; strings.Join(got, " ") != want {
		t.Errorf("fragments = %q, want %q", got, want)
	}
	if _, err := fragments(t.TempDir()); err == nil {
		t.Error("fragments of an empty directory: no error")
	}
}

// TestBuildRefusesBadNames checks the recipe's names never reach apt or
// make unchecked.
func TestBuildRefusesBadNames(t *testing.T) {
	for _, o := range []Options{
		{Source: "u-boot; rm", Defconfig: "maltael_defconfig", Binary: "u-boot.bin"},
		{Source: "u-boot", Defconfig: "maltael", Binary: "u-boot.bin"},
		{Source: "u-boot", Defconfig: "../x_defconfig", Binary: "u-boot.bin"},
		{Source: "u-boot", Defconfig: "maltael_defconfig", Binary: "../../etc/passwd"},
	} {
		if _, _, err := Build(context.Background(), o); err == nil {
			t.Errorf("Build(%+v): no error", o)
		}
	}
}
