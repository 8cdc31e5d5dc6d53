// Package arch is the one table of architecture facts the image builder
// needs: for each Debian architecture a recipe may name, the Go target,
// the Debian cross compiler, the xz branch filter the kernel's initramfs
// decoder accepts, and how QEMU emulates a machine of it. The recipe
// validator, the runtime cross-build, the App Engine packager, the initrd
// compressor and the boot test all read it, so adding an architecture is
// one row here (and arch_test.go checks the row is complete).
//
//	a, err := arch.Lookup("armhf")
//	env := append(os.Environ(), a.GoEnv()...) // GOOS=linux GOARCH=arm GOARM=7
//	cc := a.CC()                              // arm-linux-gnueabihf-gcc
package arch

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
)

// Arch holds the facts of one Debian architecture.
type Arch struct {
	// Debian is the Debian architecture name (the recipe's arch key,
	// dpkg --print-architecture).
	Debian string
	// GOARCH, GOARM and GOMIPS select the Go target. GOARM and GOMIPS
	// match the Debian ABI (cgo links against Debian's C libraries):
	// armhf is ARMv7 with VFPv3-D16, armel ARMv5 soft-float, Debian's
	// mips ports are hard-float (o32 FPXX, n64). GOMIPS is passed as
	// GOMIPS64 for the 64-bit ports.
	GOARCH, GOARM, GOMIPS string
	// Triplet is the GNU triplet of Debian's cross compiler
	// (gcc-<triplet>, <triplet>-gcc) and of its C library
	// (/usr/<triplet>/lib, from libc6-dev-<arch>-cross).
	Triplet string
	// Multiarch is the Debian multiarch directory of the target's
	// libraries (/usr/lib/<multiarch>); it differs from Triplet on i386.
	Multiarch string
	// BCJ is the xz branch/call/jump filter (xz --<BCJ>) for archives the
	// kernel unpacks, or "" (none): only a filter Debian's kernels of
	// the architecture decode from bookworm (Linux 6.1) on. Their
	// configurations (linux-config-6.1) enable XZ_DEC_X86 on amd64 and
	// XZ_DEC_ARM on armhf (the kernel's default for the arch), and no
	// filter on arm64 or mipsel: the ARM64 and RISC-V decoders came with
	// Linux 6.12 (xz 5.4 and 5.6), MIPS has none. The pure Go xz writer
	// has no BCJ filters; it writes plain LZMA2, which every decoder reads.
	BCJ string
	// QEMU is the system emulator (qemu-system-*), Machine its -machine
	// type, and Console the serial console device of that machine
	// (kernel console=<Console>).
	QEMU, Machine, Console string
	// Variant is the OCI platform variant of container images for the
	// architecture ("v7" for armhf); the OCI architecture is GOARCH.
	Variant string
}

// table is the list of architectures, in the order Names reports them.
var table = []Arch{
	{Debian: "amd64", GOARCH: "amd64", Triplet: "x86_64-linux-gnu", Multiarch: "x86_64-linux-gnu",
		BCJ: "x86", QEMU: "qemu-system-x86_64", Machine: "q35", Console: "ttyS0"},
	{Debian: "arm64", GOARCH: "arm64", Triplet: "aarch64-linux-gnu", Multiarch: "aarch64-linux-gnu",
		QEMU: "qemu-system-aarch64", Machine: "virt", Console: "ttyAMA0", Variant: "v8"},
	{Debian: "armel", GOARCH: "arm", GOARM: "5", Triplet: "arm-linux-gnueabi", Multiarch: "arm-linux-gnueabi",
		BCJ: "arm", QEMU: "qemu-system-arm", Machine: "virt", Console: "ttyAMA0", Variant: "v5"},
	{Debian: "armhf", GOARCH: "arm", GOARM: "7", Triplet: "arm-linux-gnueabihf", Multiarch: "arm-linux-gnueabihf",
		BCJ: "arm", QEMU: "qemu-system-arm", Machine: "virt", Console: "ttyAMA0", Variant: "v7"},
	{Debian: "i386", GOARCH: "386", Triplet: "i686-linux-gnu", Multiarch: "i386-linux-gnu",
		BCJ: "x86", QEMU: "qemu-system-i386", Machine: "pc", Console: "ttyS0"},
	{Debian: "mips64el", GOARCH: "mips64le", GOMIPS: "hardfloat", Triplet: "mips64el-linux-gnuabi64", Multiarch: "mips64el-linux-gnuabi64",
		QEMU: "qemu-system-mips64el", Machine: "malta", Console: "ttyS0"},
	{Debian: "mipsel", GOARCH: "mipsle", GOMIPS: "hardfloat", Triplet: "mipsel-linux-gnu", Multiarch: "mipsel-linux-gnu",
		QEMU: "qemu-system-mipsel", Machine: "malta", Console: "ttyS0"},
	{Debian: "riscv64", GOARCH: "riscv64", Triplet: "riscv64-linux-gnu", Multiarch: "riscv64-linux-gnu",
		QEMU: "qemu-system-riscv64", Machine: "virt", Console: "ttyS0"},
}

// ErrUnknown is wrapped by Lookup for an architecture not in the table.
var ErrUnknown = errors.New("unknown architecture")

// Lookup returns the facts of a Debian architecture.
func Lookup(debian string) (Arch, error) {
	for _, a := range table {
		if a.Debian == debian {
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("%w %q (want one of %s)", ErrUnknown, debian, strings.Join(Names(), ", "))
}

// Names lists the Debian architectures, sorted.
func Names() []string {
	names := make([]string, len(table))
	for i, a := range table {
		names[i] = a.Debian
	}
	slices.Sort(names)
	return names
}

// Host returns the architecture this program runs on: the first row
// (in Names order) with the host's GOARCH, so armhf on 32-bit ARM.
func Host() (Arch, error) {
	for _, n := range Names() {
		if a, _ := Lookup(n); a.GOARCH == runtime.GOARCH && (a.GOARM == "" || a.GOARM == "7") {
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("%w: no Debian architecture for GOARCH %s", ErrUnknown, runtime.GOARCH)
}

// GoEnv is the environment of a go build for the architecture.
func (a Arch) GoEnv() []string {
	env := []string{"GOOS=linux", "GOARCH=" + a.GOARCH}
	if a.GOARM != "" {
		env = append(env, "GOARM="+a.GOARM)
	}
	if a.GOMIPS != "" {
		if strings.HasPrefix(a.GOARCH, "mips64") {
			env = append(env, "GOMIPS64="+a.GOMIPS)
		} else {
			env = append(env, "GOMIPS="+a.GOMIPS)
		}
	}
	return env
}

// CC is Debian's cross C compiler for the architecture.
func (a Arch) CC() string { return a.Triplet + "-gcc" }

// CCPackage is the Debian package of CC.
func (a Arch) CCPackage() string { return "gcc-" + a.Triplet }

// Native reports whether programs for a run on the host without a cross
// compiler.
func (a Arch) Native() bool { return a.GOARCH == runtime.GOARCH }

// OCIPlatform is the platform of the architecture's container images in
// OCI notation (os/arch[/variant]): linux/arm/v7 for armhf.
func (a Arch) OCIPlatform() string {
	p := "linux/" + a.GOARCH
	if a.Variant != "" {
		p += "/" + a.Variant
	}
	return p
}
