package pantavisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
	"github.com/pantavisor/pantavisor-go/runtime/update"
	"golang.org/x/sys/unix"
)

// storeObjects writes objects (name → content) into storage's object
// store and revision 0's state JSON naming them; corrupt names are
// stored with other bytes than their sha says.
func storeObjects(t testing.TB, storage string, objects map[string][]byte, corrupt ...string) {
	t.Helper()
	storeRevision(t, storage, "0", "", objects, corrupt...)
}

// bspRunJSON is a BSP whose kernel, initrd and modules are late objects.
const bspRunJSON = `"bsp/run.json":{"linux":"kernel.img","initrd":"pantavisor","modules":"modules.squashfs"}`

// storeRevision is storeObjects for revision rev, with inline entries
// ("key":value, comma-separated) added to its state JSON.
func storeRevision(t testing.TB, storage, rev, inline string, objects map[string][]byte, corrupt ...string) {
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
	if inline != "" {
		st = append(st, inline)
	}
	js := `{"#spec":"pantavisor-service-system@1",` + strings.Join(st, ",") + `}`
	os.MkdirAll(filepath.Join(storage, "trails", rev, ".pvr"), 0o755)
	if err := os.WriteFile(filepath.Join(storage, "trails", rev, ".pvr", "json"), []byte(js), 0o644); err != nil {
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
		"app/lxc.container.conf": []byte("conf"), "bsp/fit-image.its": []byte("its")}
	for _, tt := range []struct {
		name    string
		corrupt []string
		cmdline string
		env     []string
		ready   bool
	}{
		{"intact", nil, "", nil, true},
		{"rotten object", []string{"app/root.squashfs"}, "", nil, false},
		{"rotten kernel without run.json", []string{"bsp/kernel.img"}, "", nil, false},
		{"rotten FIT source is not used", []string{"bsp/fit-image.its"}, "", nil, true},
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
			if tt.ready {
				return
			}
			name := tt.corrupt[0]
			if _, n, ok := strings.Cut(name, ":"); ok {
				name = n
			}
			if !strings.Contains(log, "checksum: "+name+": verify object") {
				t.Errorf("log lacks the checksum failure:\n%s", log)
			}
		})
	}
}

// TestChecksumLate: the objects the boot loader loaded and the modules
// image are verified beside the container start (the revision gets to
// READY first), and a mismatch there still fails the revision: RUN's
// error, then ROLLBACK and REBOOT (ERROR first for revision 0).
func TestChecksumLate(t *testing.T) {
	objects := map[string][]byte{"app/root.squashfs": []byte("squash"), "bsp/kernel.img": []byte("kernel"),
		"bsp/pantavisor": []byte("initrd"), "bsp/modules.squashfs": []byte("modules")}
	for _, rotten := range []string{"bsp/kernel.img", "bsp/modules.squashfs", ""} {
		t.Run("rotten "+rotten, func(t *testing.T) {
			storage := newStorage(t)
			var corrupt []string
			if rotten != "" {
				corrupt = []string{rotten}
			}
			storeRevision(t, storage, "0", bspRunJSON, objects, corrupt...)
			hold := make(chan struct{})
			lateCheckHold = func() { <-hold }
			t.Cleanup(func() { lateCheckHold = nil })
			var logs syncBuf
			d, err := New(Options{Cmdline: "pv_appengine pv_rev=0", NoLogServer: true, Log: newTextLog(&logs),
				Env: []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + filepath.Join(t.TempDir(), "run"), "PV_CONTROL_REMOTE=0"}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan Exit, 1)
			go func() { e, _ := d.Run(ctx); done <- e }()
			select {
			case <-d.Ready(): // the late check is held: READY came first
			case <-done:
				t.Fatalf("exited before READY:\n%s", logs.String())
			}
			close(hold)
			if rotten == "" {
				waitLog(t, &logs, "checksum: boot loader and modules objects verified")
				if got := d.State(); got != StateWait {
					t.Errorf("state after the late check = %s, want WAIT", got)
				}
				cancel()
				<-done
				return
			}
			select {
			case e := <-done:
				if e != ExitReboot {
					t.Errorf("exit = %v, want reboot", e)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("still running 20s after the late check:\n%s", logs.String())
			}
			if log := logs.String(); !strings.Contains(log, "checksum: "+rotten+": verify object") || !strings.Contains(log, "msg=run ") {
				t.Errorf("log lacks RUN's checksum failure:\n%s", log)
			}
		})
	}
}

// waitLog polls until the log holds s.
func waitLog(t *testing.T, logs *syncBuf, s string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q after 20s:\n%s", s, logs.String())
		}
	}
}

// TestChecksumLateTry: a try revision whose kernel object rotted is not
// committed while its late check runs, however long it takes, and the
// mismatch rolls it back: pv_try stays set for the boot loader, pv_rev
// stays the committed revision.
func TestChecksumLateTry(t *testing.T) {
	dir := tryingStorage(t)
	storeRevision(t, dir, tryRev, bspRunJSON, map[string][]byte{"bsp/kernel.img": []byte("kernel"),
		"bsp/pantavisor": []byte("initrd"), "bsp/modules.squashfs": []byte("modules")}, "bsp/kernel.img")
	hold := make(chan struct{})
	lateCheckHold = func() { <-hold }
	t.Cleanup(func() { lateCheckHold = nil })
	in := start(t, dir, func(o *Options) {
		o.Cmdline = "pv_rev=" + tryRev + " pv_try=" + tryRev + " pv_appengine"
		o.NewUpdater = func(env Env) (Updater, error) {
			bl, err := bootloader.Open(bootloader.Options{Type: "uboot", Storage: env.Storage.Root(), Cmdline: env.Cmdline})
			if err != nil {
				return nil, err
			}
			u, err := update.New(update.Options{Storage: env.Storage, Bootloader: bl, Log: env.Log, CommitDelay: time.Millisecond})
			return testUpdater{u}, err
		}
	})
	// Without the hold, the update (no containers, no commit delay)
	// would be committed at its second WAIT round.
	time.Sleep(2*Tick + Tick/2)
	env := bootloader.OpenUbootFile(filepath.Join(dir, "boot", "uboot.txt"))
	if rev, _ := env.Get(bootloader.VarRev); rev != "0" {
		t.Fatalf("pv_rev = %q during the late check, want 0 (not committed)", rev)
	}
	close(hold)
	select {
	case <-in.done:
	case <-time.After(20 * time.Second):
		t.Fatal("try revision with a rotten kernel still running 20s after its late check")
	}
	if in.exit != ExitReboot {
		t.Errorf("exit = %v, want reboot", in.exit)
	}
	rev, _ := env.Get(bootloader.VarRev)
	try, _ := env.Get(bootloader.VarTry)
	if rev != "0" || try != tryRev {
		t.Errorf("after the rollback pv_rev=%q pv_try=%q, want 0 and %s (the boot loader falls back)", rev, try, tryRev)
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

// TestChecksumDMVolume: of a "dm:" volume, RUN skips the data file (the
// kernel checks its blocks against the root hash as they are read) but
// still verifies the hash device; the _dm manifest is inline JSON, under
// the state's signature rather than a checksum.
func TestChecksumDMVolume(t *testing.T) {
	sha := strings.Repeat("a", 64)
	raw := `{"#spec":"pantavisor-service-system@1",` +
		`"app/run.json":{"#spec":"service-manifest-run@1","name":"app","type":"lxc","config":"lxc.container.conf","root-volume":"dm:root.squashfs","volumes":["dm:data.squashfs"],"storage":{}},` +
		`"app/lxc.container.conf":"` + sha + `","app/root.squashfs":"` + sha + `","app/root.squashfs.hash":"` + sha + `",` +
		`"app/data.squashfs":"` + sha + `","app/data.squashfs.hash":"` + sha + `",` +
		`"app/_dm/root.squashfs.json":{"type":"dm-verity","data_device":"root.squashfs","hash_device":"root.squashfs.hash","root_hash":"00"},` +
		`"app/_dm/data.squashfs.json":{"type":"dm-verity","data_device":"data.squashfs","hash_device":"data.squashfs.hash","root_hash":"00"}}`
	st, err := state.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{store: store}
	var names []string
	for _, o := range d.revisionObjects("0", st) {
		names = append(names, o.name)
	}
	// Missing files each count (no links to merge in an empty store).
	if got, want := strings.Join(names, " "), "app/data.squashfs.hash app/lxc.container.conf app/root.squashfs.hash"; got != want {
		t.Errorf("revisionObjects() = %s, want %s", got, want)
	}
}
