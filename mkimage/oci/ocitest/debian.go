package ocitest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNoHostBinaries is wrapped by HostDebian when the host lacks
// Debian's busybox-static, coreutils' printenv or ldd.
var ErrNoHostBinaries = errors.New("host binaries for the test image missing")

// HostDebian is an amd64 image of Debian binaries installed on the host
// (busybox-static; coreutils' printenv with the libc6 libraries it
// links), in two layers that exercise what flattening must get right: a
// symbolic-linked directory written through (lib -> usr/lib,
// lib64 -> usr/lib64), a whiteout (/tmp/gone), an opaque directory
// (/etc/old keeps only "new") and a hard link (/bin/bb2 = /bin/busybox).
func HostDebian(cfg v1.Config) (v1.Image, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoHostBinaries, err)
	}
	prog, err := exec.LookPath("printenv")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoHostBinaries, err)
	}
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		return nil, fmt.Errorf("%w: ldd %s: %w", ErrNoHostBinaries, prog, err)
	}
	l1 := []Entry{Dir("bin/"), File("bin/busybox", bb, 0o755), Dir("usr/"), Dir("usr/bin/"),
		Dir("usr/lib/"), Dir("usr/lib/x86_64-linux-gnu/"), Dir("usr/lib64/"),
		Symlink("lib", "usr/lib"), Symlink("lib64", "usr/lib64"),
		Dir("etc/"), Dir("etc/old/"), File("etc/old/junk", []byte("j"), 0o644),
		Dir("tmp/"), File("tmp/gone", []byte("g"), 0o644), Dir("srv/"), Dir("srv/work/"),
		Dir("proc/"), Dir("sys/"), Dir("dev/"), Dir("run/"), File("etc/resolv.conf", nil, 0o644)}
	for _, a := range []string{"sh", "ls", "cat", "pwd", "sleep", "echo", "test", "["} {
		l1 = append(l1, Symlink("bin/"+a, "busybox"))
	}
	pb, err := os.ReadFile(prog)
	if err != nil {
		return nil, err
	}
	l2 := []Entry{File("usr/bin/printenv", pb, 0o755), Whiteout("tmp", "gone"),
		Opaque("etc/old"), File("etc/old/new", []byte("n"), 0o644), Hardlink("bin/bb2", "bin/busybox")}
	// Libraries at the paths ldd names (/lib/…, /lib64/…): written
	// through the image's lib and lib64 links.
	for _, m := range regexp.MustCompile(`(?m)(/\S+) \(0x`).FindAllStringSubmatch(string(out), -1) {
		b, err := os.ReadFile(m[1])
		if err != nil {
			return nil, err
		}
		p := strings.TrimPrefix(m[1], "/")
		if !strings.HasPrefix(p, "lib/") && !strings.HasPrefix(p, "lib64/") {
			return nil, fmt.Errorf("%w: library %s outside /lib, /lib64", ErrNoHostBinaries, m[1])
		}
		l2 = append(l2, File(p, b, 0o755))
	}
	la, err := Layer(l1...)
	if err != nil {
		return nil, err
	}
	lb, err := Layer(l2...)
	if err != nil {
		return nil, err
	}
	return Image("linux/amd64", cfg, la, lb)
}

// HostDebianScript is a Cmd for HostDebian images (with Entrypoint
// /bin/sh -c) that prints what the image's config and layers should
// give, then ready, then sleeps.
const HostDebianScript = `echo oci-start; echo cwd=$(pwd); echo greeting=$GREETING; /usr/bin/printenv OCI_VAR; ls /etc/old; ` +
	`[ -e /tmp/gone ] || echo whiteout-ok; [ /bin/bb2 -ef /bin/busybox ] && echo hardlink-ok; echo oci-ready; exec sleep 3600`

// HostDebianConfig is the config TestAppRunsInLXC and the App Engine
// fixture use with HostDebian.
func HostDebianConfig() v1.Config {
	return v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{HostDebianScript},
		Env:        []string{"PATH=/usr/bin:/bin", "GREETING=hello from the image", "OCI_VAR=dynamic-printenv-ok"},
		WorkingDir: "/srv/work",
	}
}
