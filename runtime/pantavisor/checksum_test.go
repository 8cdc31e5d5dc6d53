package pantavisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// storeObjects writes objects (name → content) into storage's object
// store and revision 0's state JSON naming them; corrupt names are
// stored with other bytes than their sha says.
func storeObjects(t testing.TB, storage string, objects map[string][]byte, corrupt ...string) {
	t.Helper()
	os.MkdirAll(filepath.Join(storage, "objects"), 0o755)
	var st []string
	for name, data := range objects {
		sum := sha256.Sum256(data)
		sha := hex.EncodeToString(sum[:])
		for _, c := range corrupt {
			if c == name {
				data = append([]byte("rotten "), data...)
			}
		}
		if err := os.WriteFile(filepath.Join(storage, "objects", sha), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st = append(st, `"`+name+`":"`+sha+`"`)
	}
	js := `{"#spec":"pantavisor-service-system@1",` + strings.Join(st, ",") + `}`
	if err := os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runOnce runs a daemon on storage until it is ready (returns "") or
// exits (returns the log).
func runOnce(t *testing.T, storage, cmdline string, env ...string) (ready bool, log string) {
	t.Helper()
	var logs syncBuf
	d, err := New(Options{Cmdline: "pv_appengine pv_rev=0 " + cmdline, NoLogServer: true, Log: newTextLog(&logs),
		Env: append([]string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + filepath.Join(t.TempDir(), "run"), "PV_CONTROL_REMOTE=0"}, env...)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	select {
	case <-d.Ready():
		ready = true
	case <-done:
	}
	cancel()
	<-done
	return ready, logs.String()
}

func TestChecksumRun(t *testing.T) {
	objects := map[string][]byte{"app/root.squashfs": []byte("squash"), "bsp/kernel.img": []byte("kernel"),
		"app/lxc.container.conf": []byte("conf")}
	for _, tt := range []struct {
		name    string
		corrupt []string
		cmdline string
		env     []string
		ready   bool
	}{
		{"intact", nil, "", nil, true},
		{"rotten object", []string{"app/root.squashfs"}, "", nil, false},
		{"rotten kernel is the boot loader's", []string{"bsp/kernel.img"}, "", nil, true},
		{"PV_SECUREBOOT_CHECKSUM=0", []string{"app/root.squashfs"}, "", []string{"PV_SECUREBOOT_CHECKSUM=0"}, true},
		{"pv_quickboot", []string{"app/root.squashfs"}, "pv_quickboot=1", nil, true},
		{"pv_quickboot env", []string{"app/root.squashfs"}, "", []string{"pv_quickboot=1"}, true},
		{"rotten trail file", []string{"trail:app/root.squashfs"}, "", nil, false},
		{"intact trail file, no object", []string{"trail-only:app/root.squashfs"}, "", nil, true},
		{"missing", []string{"missing:app/root.squashfs"}, "", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storage := newStorage(t)
			storeObjects(t, storage, objects, tt.corrupt...)
			// The trail's file is the one used: a trail copy (not a
			// link) is what gets verified.
			for _, c := range tt.corrupt {
				how, name, ok := strings.Cut(c, ":")
				if !ok {
					continue
				}
				sum := sha256.Sum256(objects[name])
				obj := filepath.Join(storage, "objects", hex.EncodeToString(sum[:]))
				trail := filepath.Join(storage, "trails", "0", name)
				os.MkdirAll(filepath.Dir(trail), 0o755)
				switch how {
				case "trail":
					os.WriteFile(trail, []byte("rotten"), 0o644)
				case "trail-only":
					os.WriteFile(trail, objects[name], 0o644)
					os.Remove(obj)
				case "missing":
					os.Remove(obj)
				}
			}
			ready, log := runOnce(t, storage, tt.cmdline, tt.env...)
			if ready != tt.ready {
				t.Errorf("ready = %v, want %v; log:\n%s", ready, tt.ready, log)
			}
			if !tt.ready && !strings.Contains(log, "checksum: app/root.squashfs: verify object") {
				t.Errorf("log lacks the checksum failure:\n%s", log)
			}
		})
	}
}

// TestSumMappedFault: a mapping whose file was cut short (as a storage
// read error would) gives an error, not a crash of the daemon.
func TestSumMappedFault(t *testing.T) {
	p := filepath.Join(t.TempDir(), "obj")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 1<<20, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := sumMapped(m); err == nil || !strings.Contains(err.Error(), "read fault") {
		t.Errorf("sumMapped(truncated) = %v, want a read fault", err)
	}
}
