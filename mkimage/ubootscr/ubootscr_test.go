package ubootscr

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

const epoch = 1700000000

// TestMatchesMkimage compares Make with what u-boot-tools' mkimage writes
// for the same script, name, architecture and SOURCE_DATE_EPOCH, byte for
// byte, and reads both back with `mkimage -l`.
func TestMatchesMkimage(t *testing.T) {
	if _, err := exec.LookPath("mkimage"); err != nil {
		testenv.Skipf(t, "mkimage not installed (Debian u-boot-tools)")
	}
	for _, tc := range []struct {
		name, script, debian, kind string
	}{
		{"pantavisor", "echo hi\n", "arm64", "AArch64 Linux Script (uncompressed)"},
		{"", "echo hi\nx\n", "armhf", "ARM Linux Script (uncompressed)"}, // odd length: no padding
		{strings.Repeat("n", 31), "setenv a b\n", "mipsel", "MIPS Linux Script (uncompressed)"},
	} {
		t.Run(tc.debian, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "boot.cmd")
			if err := os.WriteFile(src, []byte(tc.script), 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := ArchOf(tc.debian)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Make(tc.name, []byte(tc.script), a, epoch)
			if err != nil {
				t.Fatal(err)
			}
			mkArch := map[Arch]string{ArchARM64: "arm64", ArchARM: "arm", ArchMIPS: "mips"}[a]
			ref := filepath.Join(dir, "ref.scr")
			cmd := exec.Command("mkimage", "-A", mkArch, "-O", "linux", "-T", "script", "-C", "none", "-n", tc.name, "-d", src, ref)
			cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", epoch))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mkimage: %v: %s", err, out)
			}
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Make = % x\nmkimage wrote % x", got, want)
			}
			mine := filepath.Join(dir, "boot.scr")
			if err := os.WriteFile(mine, got, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("mkimage", "-l", mine).CombinedOutput()
			if err != nil {
				t.Fatalf("mkimage -l: %v: %s", err, out)
			}
			for _, w := range []string{
				"Image Name:   " + tc.name + "\n",
				"Image Type:   " + tc.kind,
				fmt.Sprintf("Image 0: %d Bytes", len(tc.script)),
			} {
				if !strings.Contains(string(out), w) {
					t.Errorf("mkimage -l = %s\nwant %q in it", out, w)
				}
			}
			text, h, err := Parse(want)
			if err != nil || string(text) != tc.script || h.Name != tc.name || h.Time != epoch || h.Arch != a {
				t.Errorf("Parse(mkimage's) = %q, %+v, %v; want %q", text, h, err, tc.script)
			}
		})
	}
}

func TestMakeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		epoch        int64
	}{
		{strings.Repeat("n", 32), "x", 0},
		{"n", "", 0},
		{"n", "x", -1},
		{"n", "x", 1 << 32},
	} {
		if _, err := Make(tc.name, []byte(tc.script), ArchARM64, tc.epoch); err == nil {
			t.Errorf("Make(%q, %q, %d) = nil error", tc.name, tc.script, tc.epoch)
		}
	}
	if _, err := ArchOf("s390x"); err == nil {
		t.Errorf("ArchOf(s390x) = nil error")
	}
}

// TestParseRejects flips each part of a good image and expects ErrFormat.
func TestParseRejects(t *testing.T) {
	good, err := Make("pantavisor", []byte("echo hi\n"), ArchARM64, epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:HeaderSize-1] }},
		{"magic", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"header crc", func(b []byte) []byte { b[40] ^= 1; return b }},
		{"data crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"truncated data", func(b []byte) []byte { return b[:len(b)-1] }},
	} {
		b := tc.edit(bytes.Clone(good))
		if _, _, err := Parse(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Parse = %v, want ErrFormat", tc.name, err)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts it reads back the
// same after Make (a script image Make wrote is one Parse accepts).
func FuzzParse(f *testing.F) {
	good, _ := Make("pantavisor", []byte("echo hi\n"), ArchARM64, epoch)
	f.Add(good)
	f.Add(good[:HeaderSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		text, h, err := Parse(b)
		if err != nil {
			return
		}
		if len(h.Name) >= NameSize {
			t.Fatalf("name %q too long", h.Name)
		}
		again, err := Make(h.Name, text, h.Arch, int64(h.Time))
		if err != nil {
			t.Fatalf("Make of a parsed image: %v", err)
		}
		text2, h2, err := Parse(again)
		if err != nil || !bytes.Equal(text, text2) || h2.Name != h.Name || h2.Time != h.Time {
			t.Fatalf("round trip = %q %+v %v, want %q %+v", text2, h2, err, text, h)
		}
	})
}

// TestKernelMatchesMkimage compares MakeKernel with mkimage -T kernel for
// the same bytes, addresses and SOURCE_DATE_EPOCH.
func TestKernelMatchesMkimage(t *testing.T) {
	if _, err := exec.LookPath("mkimage"); err != nil {
		testenv.Skipf(t, "mkimage not installed (Debian u-boot-tools)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "vmlinux.bin")
	data := []byte("not really a kernel, but bytes bootm copies\x00\x01")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := MakeKernel("Linux 6.1", data, ArchMIPS, 0x810f0000, 0x810f0010, epoch)
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(dir, "uImage")
	cmd := exec.Command("mkimage", "-A", "mips", "-O", "linux", "-T", "kernel", "-C", "none", "-a", "0x810f0000", "-e", "0x810f0010", "-n", "Linux 6.1", "-d", src, ref)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", epoch))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v: %s", err, out)
	}
	want, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MakeKernel = % x\nmkimage wrote % x", got[:HeaderSize], want[:min(len(want), HeaderSize)])
	}
	out, err := exec.Command("mkimage", "-l", ref).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "MIPS Linux Kernel Image (uncompressed)") {
		t.Errorf("mkimage -l = %s (%v)", out, err)
	}
}
