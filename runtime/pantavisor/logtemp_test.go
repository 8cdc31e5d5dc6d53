package pantavisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// logMount returns the file system type and super options of the mount on
// dir, "" when nothing is mounted there.
func logMount(t *testing.T, dir string) (fstype, opts string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) > 4 && len(g) > 2 && f[4] == dir {
			fstype, opts = g[0], g[2]
		}
	}
	return fstype, opts
}

// TestLogTempSize: PV_STORAGE_LOGTEMPSIZE puts the log dir on a tmpfs of
// that size, where the daemon's log goes, unmounted on exit; unset, the
// logs stay on storage.
func TestLogTempSize(t *testing.T) {
	testenv.NeedRoot(t, "mounts a tmpfs on the log dir")
	for _, tt := range []struct{ value, want string }{{"", ""}, {"2M", "size=2048k"}, {"1%", "size="}} {
		storage := newStorage(t)
		logs, _ := filepath.EvalSymlinks(storage)
		logs = filepath.Join(logs, "logs")
		in := start(t, storage, func(o *Options) {
			o.Env = append(o.Env, "PV_LOG_LEVEL=5")
			if tt.value != "" {
				o.Env = append(o.Env, "PV_STORAGE_LOGTEMPSIZE="+tt.value)
			}
		})
		fstype, opts := logMount(t, logs)
		switch {
		case tt.want == "" && fstype != "":
			t.Errorf("unset: %s mounted on the log dir", fstype)
		case tt.want != "" && (fstype != "tmpfs" || !strings.Contains(opts, tt.want)):
			t.Errorf("%s: log dir mount %q %q, want tmpfs with %s", tt.value, fstype, opts, tt.want)
		}
		in.stop()
		if fstype, _ := logMount(t, logs); fstype != "" {
			t.Errorf("%s: %s still mounted on the log dir after exit", tt.value, fstype)
		}
		if tt.value != "" {
			// what the daemon logged went with the tmpfs
			if _, err := os.Stat(filepath.Join(logs, "0")); err == nil {
				t.Errorf("%s: logs/0 on storage after exit, want them on the tmpfs only", tt.value)
			}
		} else if _, err := os.Stat(filepath.Join(logs, "0")); err != nil {
			t.Errorf("unset: logs on storage: %v", err)
		}
	}
}
