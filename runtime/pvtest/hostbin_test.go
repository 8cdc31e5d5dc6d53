package pvtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func TestHostBinaries(t *testing.T) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		testenv.Skipf(t, "dbus-daemon not installed (Debian dbus-daemon)")
	}
	files, err := hostBinaries("/usr/bin/dbus-daemon")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	seenFile := false
	for _, f := range files {
		paths = append(paths, f.Path)
		if f.Link == "" {
			seenFile = true
		} else if seenFile {
			t.Errorf("link %s after a file: links come first", f.Path)
		}
	}
	all := strings.Join(paths, " ")
	for _, want := range []string{"/usr/bin/dbus-daemon", "libdbus-1.so.3", "libexpat.so.1", "libc.so.6", "ld-linux"} {
		if !strings.Contains(all, want) {
			t.Errorf("hostBinaries(dbus-daemon) has no %s: %s", want, all)
		}
	}
}
