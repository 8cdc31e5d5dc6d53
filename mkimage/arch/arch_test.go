package arch

import (
	"errors"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestRowsComplete checks every row has every fact and that the facts
// agree with each other: the Go float settings exist exactly for the
// ports that have them, the triplet, BCJ filter, emulator and console
// belong to the same CPU family.
func TestRowsComplete(t *testing.T) {
	family := map[string]struct {
		triplet, qemu string
		bcj           []string
	}{
		"amd64":    {"x86_64-", "qemu-system-x86_64", []string{"x86"}},
		"386":      {"i686-", "qemu-system-i386", []string{"x86"}},
		"arm64":    {"aarch64-", "qemu-system-aarch64", []string{""}},
		"arm":      {"arm-", "qemu-system-arm", []string{"arm", "armthumb", ""}},
		"mipsle":   {"mipsel-", "qemu-system-mipsel", []string{""}},
		"mips64le": {"mips64el-", "qemu-system-mips64el", []string{""}},
		"riscv64":  {"riscv64-", "qemu-system-riscv64", []string{""}},
	}
	seen := map[string]bool{}
	for _, a := range table {
		if seen[a.Debian] {
			t.Errorf("%s: listed twice", a.Debian)
		}
		seen[a.Debian] = true
		for name, v := range map[string]string{"Debian": a.Debian, "GOARCH": a.GOARCH, "Triplet": a.Triplet, "Multiarch": a.Multiarch,
			"QEMU": a.QEMU, "Machine": a.Machine, "Console": a.Console} {
			if v == "" {
				t.Errorf("%s: %s is empty", a.Debian, name)
			}
		}
		f, ok := family[a.GOARCH]
		if !ok {
			t.Errorf("%s: GOARCH %q has no family in this test", a.Debian, a.GOARCH)
			continue
		}
		if !strings.HasPrefix(a.Triplet, f.triplet) || !strings.Contains(a.Triplet, "-linux-gnu") {
			t.Errorf("%s: Triplet %q, want %s…-linux-gnu…", a.Debian, a.Triplet, f.triplet)
		}
		if a.QEMU != f.qemu {
			t.Errorf("%s: QEMU %q, want %q", a.Debian, a.QEMU, f.qemu)
		}
		if !slices.Contains(f.bcj, a.BCJ) {
			t.Errorf("%s: BCJ %q, want one of %q", a.Debian, a.BCJ, f.bcj)
		}
		if (a.GOARM != "") != (a.GOARCH == "arm") || (a.GOARM != "" && !slices.Contains([]string{"5", "6", "7"}, a.GOARM)) {
			t.Errorf("%s: GOARM %q for GOARCH %s", a.Debian, a.GOARM, a.GOARCH)
		}
		mips := strings.HasPrefix(a.GOARCH, "mips")
		if (a.GOMIPS != "") != mips || (mips && a.GOMIPS != "hardfloat" && a.GOMIPS != "softfloat") {
			t.Errorf("%s: GOMIPS %q for GOARCH %s", a.Debian, a.GOMIPS, a.GOARCH)
		}
		// QEMU's ARM virt machine has a PL011 UART, every other machine
		// here a 16550.
		want := "ttyS0"
		if a.Machine == "virt" && strings.HasPrefix(a.QEMU, "qemu-system-a") {
			want = "ttyAMA0"
		}
		if a.Console != want {
			t.Errorf("%s: Console %q on %s %s, want %s", a.Debian, a.Console, a.QEMU, a.Machine, want)
		}
	}
}

// TestDebianFacts asks dpkg-architecture (dpkg-dev) for Debian's own
// triplet and multiarch directory of each row.
func TestDebianFacts(t *testing.T) {
	if _, err := exec.LookPath("dpkg-architecture"); err != nil {
		t.Skip("no dpkg-architecture (dpkg-dev)")
	}
	for _, a := range table {
		for q, want := range map[string]string{"DEB_HOST_GNU_TYPE": a.Triplet, "DEB_HOST_MULTIARCH": a.Multiarch} {
			out, err := exec.Command("dpkg-architecture", "-a"+a.Debian, "-q"+q).Output()
			if got := strings.TrimSpace(string(out)); err != nil || got != want {
				t.Errorf("dpkg-architecture -a%s -q%s = %q, %v; want %q", a.Debian, q, got, err, want)
			}
		}
	}
}

// TestGoPorts checks every GOARCH is a linux port of the go command that
// builds this test.
func TestGoPorts(t *testing.T) {
	out, err := exec.Command("go", "tool", "dist", "list").Output()
	if err != nil {
		t.Skipf("go tool dist list: %v", err)
	}
	ports := strings.Fields(string(out))
	for _, a := range table {
		if !slices.Contains(ports, "linux/"+a.GOARCH) {
			t.Errorf("%s: linux/%s is not a go port", a.Debian, a.GOARCH)
		}
	}
}

func TestLookup(t *testing.T) {
	a, err := Lookup("armhf")
	if err != nil || a.CC() != "arm-linux-gnueabihf-gcc" || a.CCPackage() != "gcc-arm-linux-gnueabihf" {
		t.Errorf("Lookup(armhf) = %+v, %v; want arm-linux-gnueabihf-gcc", a, err)
	}
	if got, want := strings.Join(a.GoEnv(), " "), "GOOS=linux GOARCH=arm GOARM=7"; got != want {
		t.Errorf("armhf GoEnv = %q, want %q", got, want)
	}
	for deb, want := range map[string]string{"mipsel": "GOMIPS=hardfloat", "mips64el": "GOMIPS64=hardfloat"} {
		if a, _ := Lookup(deb); !slices.Contains(a.GoEnv(), want) {
			t.Errorf("%s GoEnv = %q, want %s", deb, a.GoEnv(), want)
		}
	}
	if _, err := Lookup("x86_64"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Lookup(x86_64) = %v, want ErrUnknown", err)
	}
	if !slices.IsSorted(Names()) || len(Names()) != len(table) {
		t.Errorf("Names() = %q, want every row, sorted", Names())
	}
	h, err := Host()
	if err != nil || h.GOARCH != runtime.GOARCH || !h.Native() {
		t.Errorf("Host() = %+v, %v; want GOARCH %s", h, err, runtime.GOARCH)
	}
}

func TestOCIPlatform(t *testing.T) {
	for deb, want := range map[string]string{"amd64": "linux/amd64", "armhf": "linux/arm/v7", "armel": "linux/arm/v5",
		"arm64": "linux/arm64/v8", "i386": "linux/386", "riscv64": "linux/riscv64", "mipsel": "linux/mipsle"} {
		a, err := Lookup(deb)
		if got := a.OCIPlatform(); err != nil || got != want {
			t.Errorf("Lookup(%s).OCIPlatform() = %q, %v; want %q", deb, got, err, want)
		}
	}
}
