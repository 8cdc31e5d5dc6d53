package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/coredump"
	"github.com/pantavisor/pantavisor-go/runtime/daemons"
	"github.com/pantavisor/pantavisor-go/runtime/kmod"
	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
	"github.com/pantavisor/pantavisor-go/runtime/pventer"
	"github.com/pantavisor/pantavisor-go/runtime/xconnect"
)

// applets are the programs of the multi-call binary, by the name it is
// called as. Each Go program in an initrd costs 0.7-2.5 MB of compressed
// initrd; as applets they share one runtime and one copy of the packages.
var applets = map[string]func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error{
	"pantavisor": daemon,
	"modprobe":   kmod.Modprobe,        // the kernel's request_module runs /sbin/modprobe -q -- <name>
	"vcmailbox":  bootloader.Vcmailbox, // Raspberry Pi firmware property calls (/dev/vcio)
	// the kernel pipes cores to it (PV_SYSCTL_KERNEL_CORE_PATTERN=|/lib/pv/pvcrash)
	"pvcrash": func(_ context.Context, args []string, stdin io.Reader, _, stderr io.Writer) error {
		return coredump.Run(args, stdin, stderr)
	},
	// pv-xconnect is the service mesh daemon Pantavisor starts itself.
	"pv-xconnect": xconnect.Main,
	"pventer": func(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
		return pventer.Run(args, os.Getenv, file(stdin, os.Stdin), file(stdout, os.Stdout), file(stderr, os.Stderr))
	},
}

// applet picks the applet for a command line: by the program's base name
// (a link called pventer), else by the first argument
// ("pantavisor pventer -c app"), else the daemon. Daemon arguments are
// flags and pv_* words, never an applet name.
func applet(argv []string) (string, []string) {
	if len(argv) == 0 {
		return "pantavisor", nil
	}
	if name := filepath.Base(argv[0]); name != "pantavisor" && applets[name] != nil {
		return name, argv[1:]
	}
	if len(argv) > 1 && argv[1] != "pantavisor" && applets[argv[1]] != nil {
		return argv[1], argv[2:]
	}
	return "pantavisor", argv[1:]
}

// file returns w as an *os.File when it is one (pventer attaches the
// container process to real descriptors), else def.
func file(v any, def *os.File) *os.File {
	if f, ok := v.(*os.File); ok {
		return f
	}
	return def
}

// managedDaemons are the daemons Pantavisor supervises: pv-xconnect, this
// binary's applet, started through /proc/self/exe so it is the same build.
func managedDaemons(ctrlSocket string) []daemons.Spec {
	return []daemons.Spec{{Name: pantavisor.XConnectDaemon, Command: func() *exec.Cmd {
		c := exec.Command("/proc/self/exe", "-socket", ctrlSocket)
		c.Args[0] = pantavisor.XConnectDaemon
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		return c
	}}}
}
