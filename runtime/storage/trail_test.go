package storage

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// fixture is a state with boot assets, a container, a .bind file, an
// inline document and a config overlay, with all its objects stored.
type fixture struct {
	s      *Storage
	st     *state.State
	shas   map[string]string // key → sha
	inline map[string]any
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := newStorage(t)
	files := map[string]string{
		"bsp/kernel.img":              "kernel",
		"bsp/pantavisor":              "initrd",
		"bsp/board.dtb":               "fdt",
		"bsp/a1.cpio.xz4":             "addon one",
		"bsp/a2.cpio.xz4":             "addon two",
		"app/lxc.container.conf":      "lxc conf",
		"app/root.squashfs":           "rootfs",
		"app/etc/hosts.bind":          "127.0.0.1 localhost",
		"_config/app/etc/app.conf":    "key=value",
		"_config/app/etc/shared.conf": "rootfs", // same object as root.squashfs
	}
	f := &fixture{s: s, shas: map[string]string{}}
	kv := map[string]any{}
	for k, c := range files {
		f.shas[k] = putContent(t, s, c)
		kv[k] = f.shas[k]
	}
	f.inline = map[string]any{
		"bsp/run.json": map[string]any{"linux": "kernel.img", "initrd": "pantavisor", "fdt": "board.dtb", "addons": []string{"a1.cpio.xz4", "a2.cpio.xz4"}},
		"app/run.json": map[string]any{"#spec": "service-manifest-run@1", "name": "app", "type": "lxc", "config": "lxc.container.conf", "root-volume": "root.squashfs", "volumes": []string{}},
		"app/src.json": map[string]any{"note": "<a & b>", "n": 1.5},
	}
	for k, v := range f.inline {
		kv[k] = v
	}
	f.st = stateOf(t, kv)
	return f
}

func TestMaterialize(t *testing.T) {
	for _, rev := range []string{"1", "locals/dev"} {
		t.Run(rev, func(t *testing.T) {
			f := newFixture(t)
			s := f.s
			if err := s.Materialize(rev, f.st); err != nil {
				t.Fatalf("Materialize: %v", err)
			}
			dir := s.TrailDir(rev)
			for k, sha := range f.shas {
				p := filepath.Join(dir, k)
				if strings.HasSuffix(k, ".bind") {
					if sameFile(t, p, s.ObjectPath(sha)) {
						t.Errorf("%s is a hard link, want a copy", k)
					}
					if got, want := readFile(t, p), readFile(t, s.ObjectPath(sha)); got != want {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				} else if !sameFile(t, p, s.ObjectPath(sha)) {
					t.Errorf("%s is not a hard link of objects/%s", k, sha)
				}
			}
			for k := range f.inline {
				raw, _ := f.st.Raw(k)
				if got := readFile(t, filepath.Join(dir, k)); got != string(raw) {
					t.Errorf("%s = %s, want %s", k, got, raw)
				}
			}
			if got := readFile(t, filepath.Join(dir, ".pvr/json")); got != string(f.st.Canonical()) {
				t.Errorf(".pvr/json = %s, want canonical %s", got, f.st.Canonical())
			}
			wantCfg := `{"ObjectsDir": "` + filepath.Join(s.Root(), "objects") + `"}`
			if got := readFile(t, filepath.Join(dir, ".pvr/config")); got != wantCfg {
				t.Errorf(".pvr/config = %s, want %s", got, wantCfg)
			}
			for name, key := range map[string]string{
				"pv-kernel.img":   "bsp/kernel.img",
				"pv-initrd.img":   "bsp/pantavisor",
				"pv-initrd.img.0": "bsp/a1.cpio.xz4",
				"pv-initrd.img.1": "bsp/a2.cpio.xz4",
				"pv-fdt.dtb":      "bsp/board.dtb",
			} {
				if !sameFile(t, filepath.Join(dir, ".pv", name), s.ObjectPath(f.shas[key])) {
					t.Errorf(".pv/%s is not a hard link of %s", name, key)
				}
			}
			if tmp := dotEntries(t, filepath.Dir(dir)); len(tmp) != 0 {
				t.Errorf("temp entries left: %v", tmp)
			}
			revs, err := s.Revisions()
			if err != nil || len(revs) != 1 || revs[0] != rev {
				t.Errorf("Revisions() = %v, %v, want [%s]", revs, err, rev)
			}
		})
	}
}

func TestBootLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		bsp  *state.BSP
		want string
	}{
		{"nil", nil, ""},
		{"linux", &state.BSP{Linux: "k", Initrd: "i", Fdt: "f", Addons: []string{"a", "b", "c"}}, "pv-kernel.img=k pv-initrd.img=i pv-initrd.img.0=a pv-initrd.img.1=b pv-initrd.img.2=c pv-fdt.dtb=f"},
		{"fit", &state.BSP{Fit: "p.fit"}, "pantavisor.fit=p.fit"},
		{"rpiab", &state.BSP{Rpiab: "boot.img"}, "rpiboot.img=boot.img"},
		{"rpiab gz", &state.BSP{Rpiab: "boot.img.gz"}, "rpiboot.img.gz=boot.img.gz"},
	} {
		var parts []string
		for _, b := range bootLinks(tc.bsp) {
			parts = append(parts, b.name+"="+b.file)
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("bootLinks(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMaterializeRpiab(t *testing.T) {
	s := newStorage(t)
	sha := putContent(t, s, "rpi boot image")
	st := stateOf(t, map[string]any{"bsp/run.json": map[string]any{"rpiab": "rpiboot.img.gz"}, "bsp/rpiboot.img.gz": sha})
	if err := s.Materialize("3", st); err != nil {
		t.Fatal(err)
	}
	if !sameFile(t, filepath.Join(s.TrailDir("3"), ".pv/rpiboot.img.gz"), s.ObjectPath(sha)) {
		t.Errorf(".pv/rpiboot.img.gz is not a hard link of the object")
	}
}

func TestMaterializeKeepsPvFiles(t *testing.T) {
	f := newFixture(t)
	s := f.s
	const rev = "locals/keep"
	if err := s.WriteStateJSON(rev, strings.NewReader(`{"#spec": "pantavisor-service-system@1"}`)); err != nil {
		t.Fatal(err)
	}
	pr := progress.New(progress.StatusNew, progress.MsgReady)
	if err := s.WriteProgress(rev, pr); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCommitMsg(rev, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	custom := `{"ObjectsDir": "/elsewhere/objects"}`
	if err := os.WriteFile(filepath.Join(s.TrailDir(rev), ".pvr/config"), []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(s.TrailDir(rev), ".pv/logs")
	if err := os.WriteFile(logs, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A stale boot asset of an older bsp must not survive.
	if err := os.WriteFile(filepath.Join(s.TrailDir(rev), ".pv/pantavisor.fit"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Materialize(rev, f.st); err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	if got, err := s.Progress(rev); err != nil || got != pr {
		t.Errorf("Progress after Materialize = %+v, %v, want %+v", got, err, pr)
	}
	if got, _ := s.CommitMsg(rev); got != "hello" {
		t.Errorf("CommitMsg after Materialize = %q, want hello", got)
	}
	if got := readFile(t, filepath.Join(s.TrailDir(rev), ".pvr/config")); got != custom {
		t.Errorf(".pvr/config = %s, want kept %s", got, custom)
	}
	if got := readFile(t, logs); got != "{}\n" {
		t.Errorf(".pv/logs = %q, want kept", got)
	}
	if _, err := os.Stat(filepath.Join(s.TrailDir(rev), ".pv/pantavisor.fit")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale .pv/pantavisor.fit kept: %v", err)
	}
}

func TestMaterializeIdempotent(t *testing.T) {
	f := newFixture(t)
	s := f.s
	if err := s.Materialize("2", f.st); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(s.TrailDir("2"))
	bind := filepath.Join(s.TrailDir("2"), "app/etc/hosts.bind")
	if err := os.WriteFile(bind, []byte("changed by container"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Materialize("2", f.st); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(s.TrailDir("2"))
	if !os.SameFile(before, after) {
		t.Errorf("Materialize of a complete trail rebuilt it")
	}
	// A changed state rebuilds the trail but keeps the .bind copy.
	kv := map[string]any{"extra.json": map[string]any{"x": 1}}
	for k, v := range f.shas {
		kv[k] = v
	}
	for k, v := range f.inline {
		kv[k] = v
	}
	if err := s.Materialize("2", stateOf(t, kv)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, bind); got != "changed by container" {
		t.Errorf(".bind after rebuild = %q, want the container's version", got)
	}
	if got := readFile(t, filepath.Join(s.TrailDir("2"), "extra.json")); got != `{"x":1}` {
		t.Errorf("extra.json = %q", got)
	}
}

func TestMaterializeBrokenKeepsTrail(t *testing.T) {
	f := newFixture(t)
	s := f.s
	if err := s.Materialize("5", f.st); err != nil {
		t.Fatal(err)
	}
	goodJSON := readFile(t, filepath.Join(s.TrailDir("5"), ".pvr/json"))
	missing := shaOf([]byte("never stored"))
	for _, tc := range []struct {
		name string
		kv   map[string]any
		want []string
	}{
		{"missing object", map[string]any{"app/root.squashfs": missing}, []string{`"app/root.squashfs"`, missing}},
		{"inline boot asset", map[string]any{"bsp/run.json": map[string]any{"linux": "k.json"}, "bsp/k.json": map[string]any{"not": "a file"}}, []string{"linux", `"bsp/k.json"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Materialize("5", stateOf(t, tc.kv))
			if !errors.Is(err, ErrMissingObject) {
				t.Fatalf("Materialize(broken) = %v, want ErrMissingObject", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if got := readFile(t, filepath.Join(s.TrailDir("5"), ".pvr/json")); got != goodJSON {
				t.Errorf("existing trail damaged: .pvr/json = %s", got)
			}
			if !sameFile(t, filepath.Join(s.TrailDir("5"), "app/root.squashfs"), s.ObjectPath(f.shas["app/root.squashfs"])) {
				t.Errorf("existing trail damaged: app/root.squashfs")
			}
			if tmp := dotEntries(t, filepath.Join(s.Root(), "trails")); len(tmp) != 0 {
				t.Errorf("temp entries left: %v", tmp)
			}
		})
	}
	if err := s.Materialize("../5", f.st); !errors.Is(err, ErrBadRevision) {
		t.Errorf("Materialize(../5) = %v, want ErrBadRevision", err)
	}
	if err := s.Materialize("6", nil); err == nil {
		t.Errorf("Materialize(nil state) = nil, want error")
	}
}

func TestStateJSON(t *testing.T) {
	s := newStorage(t)
	const rev = "locals/s"
	if _, err := s.StateJSON(rev); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("StateJSON(absent) = %v, want ErrNotExist", err)
	}
	body := `{"#spec":"pantavisor-service-system@1"}`
	if err := s.WriteStateJSON(rev, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.StateJSON(rev); err != nil || string(got) != body {
		t.Errorf("StateJSON = %s, %v, want %s", got, err, body)
	}
	// An interrupted upload leaves the old state in place and no temp.
	err := s.WriteStateJSON(rev, io.MultiReader(strings.NewReader("{"), &failingReader{err: io.ErrUnexpectedEOF}))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("WriteStateJSON(interrupted) = %v, want ErrUnexpectedEOF", err)
	}
	if got, _ := s.StateJSON(rev); string(got) != body {
		t.Errorf("StateJSON after failed write = %s, want %s", got, body)
	}
	if tmp := dotEntries(t, filepath.Join(s.TrailDir(rev), ".pvr")); len(tmp) != 0 {
		t.Errorf("temp entries left: %v", tmp)
	}
	for _, bad := range []string{"../x", "locals/a/b", "", "/abs"} {
		if err := s.WriteStateJSON(bad, strings.NewReader(body)); !errors.Is(err, ErrBadRevision) {
			t.Errorf("WriteStateJSON(%q) = %v, want ErrBadRevision", bad, err)
		}
		if _, err := s.StateJSON(bad); !errors.Is(err, ErrBadRevision) {
			t.Errorf("StateJSON(%q) = %v, want ErrBadRevision", bad, err)
		}
	}
}

func TestProgressFiles(t *testing.T) {
	s := newStorage(t)
	if _, err := s.Progress("7"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Progress(absent) = %v, want ErrNotExist", err)
	}
	p := progress.New(progress.Done, progress.MsgFactory)
	if err := s.WriteProgress("7", p); err != nil {
		t.Fatal(err)
	}
	want := `{"status":"DONE","status-msg":"Factory revision","progress":100,"retries":0}`
	if got := readFile(t, filepath.Join(s.TrailDir("7"), ".pv/progress")); got != want {
		t.Errorf(".pv/progress = %s, want %s", got, want)
	}
	if got, err := s.Progress("7"); err != nil || got != p {
		t.Errorf("Progress = %+v, %v, want %+v", got, err, p)
	}
	if err := os.WriteFile(filepath.Join(s.TrailDir("7"), ".pv/progress"), []byte(`{"status":"MAYBE"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Progress("7"); !errors.Is(err, progress.ErrBadProgress) {
		t.Errorf("Progress(bad) = %v, want ErrBadProgress", err)
	}
	if s.IsDone("7") {
		t.Errorf("IsDone before SetDone = true")
	}
	if err := s.SetDone("7"); err != nil || !s.IsDone("7") {
		t.Errorf("SetDone = %v, IsDone = %v, want nil, true", err, s.IsDone("7"))
	}
	if got, err := s.CommitMsg("7"); err != nil || got != "" {
		t.Errorf("CommitMsg(absent) = %q, %v, want empty", got, err)
	}
	msg := strings.Repeat("m", MaxCommitMsg)
	if err := s.WriteCommitMsg("7", []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CommitMsg("7"); err != nil || got != msg {
		t.Errorf("CommitMsg = %q, %v, want %q", got, err, msg)
	}
	if err := s.WriteCommitMsg("7", []byte(msg+"!")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("WriteCommitMsg(257 B) = %v, want ErrTooLarge", err)
	}
	if err := s.WriteProgress("../7", p); !errors.Is(err, ErrBadRevision) {
		t.Errorf("WriteProgress(../7) = %v, want ErrBadRevision", err)
	}
}

func TestCurrent(t *testing.T) {
	s := newStorage(t)
	if _, err := s.Current(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Current(absent) = %v, want ErrNotExist", err)
	}
	for _, rev := range []string{"0", "locals/x", "12"} {
		if err := s.SetCurrent(rev); err != nil {
			t.Fatalf("SetCurrent(%s): %v", rev, err)
		}
		l, err := os.Readlink(filepath.Join(s.Root(), "trails/current"))
		if err != nil || l != rev {
			t.Errorf("trails/current -> %q, %v, want %q", l, err, rev)
		}
		if got, err := s.Current(); err != nil || got != rev {
			t.Errorf("Current() = %q, %v, want %q", got, err, rev)
		}
	}
	if err := s.SetCurrent("../x"); !errors.Is(err, ErrBadRevision) {
		t.Errorf("SetCurrent(../x) = %v, want ErrBadRevision", err)
	}
}

func mkdirs(t testing.TB, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRevisions(t *testing.T) {
	s := newStorage(t)
	tr := filepath.Join(s.Root(), "trails")
	mkdirs(t, tr+"/10", tr+"/2", tr+"/0", tr+"/locals/b", tr+"/locals/a", tr+"/.materialize-3-x", tr+"/foo", tr+"/locals/.remove-c")
	if err := s.SetCurrent("2"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Revisions()
	want := []string{"0", "2", "10", "locals/a", "locals/b"}
	if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Revisions() = %v, %v, want %v", got, err, want)
	}
	if !s.HasRevision("10") || s.HasRevision("11") || s.HasRevision("foo") {
		t.Errorf("HasRevision wrong")
	}
}

func TestRemoveRevision(t *testing.T) {
	s := newStorage(t)
	for _, rev := range []string{"1", "locals/a"} {
		if err := s.WriteStateJSON(rev, strings.NewReader("{}")); err != nil {
			t.Fatal(err)
		}
		mkdirs(t, filepath.Join(s.Root(), "logs", rev, "pantavisor"), filepath.Join(s.Root(), "disks/rev", rev, "app/data"))
	}
	if err := s.RemoveRevision("1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"trails/1", "logs/1", "disks/rev/1"} {
		if _, err := os.Stat(filepath.Join(s.Root(), p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after RemoveRevision: %v, want gone", p, err)
		}
	}
	for _, p := range []string{"trails/locals/a", "logs/locals/a", "disks/rev/locals/a"} {
		if _, err := os.Stat(filepath.Join(s.Root(), p)); err != nil {
			t.Errorf("%s of another revision: %v", p, err)
		}
	}
	if err := s.RemoveRevision("locals/a"); err != nil {
		t.Fatal(err)
	}
	if s.HasRevision("locals/a") {
		t.Errorf("locals/a still there")
	}
	if err := s.RemoveRevision("1"); err != nil {
		t.Errorf("RemoveRevision(absent) = %v, want nil", err)
	}
	for _, bad := range []string{"../objects", "locals/..", "..", "locals", "current"} {
		if err := s.RemoveRevision(bad); !errors.Is(err, ErrBadRevision) {
			t.Errorf("RemoveRevision(%q) = %v, want ErrBadRevision", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "objects")); err != nil {
		t.Errorf("objects/ damaged: %v", err)
	}
	if tmp := append(dotEntries(t, filepath.Join(s.Root(), "trails")), dotEntries(t, filepath.Join(s.Root(), "logs"))...); len(tmp) != 0 {
		t.Errorf("temp entries left: %v", tmp)
	}
}

func TestMaterializeFailsMidway(t *testing.T) {
	f := newFixture(t)
	s := f.s
	if err := s.Materialize("8", f.st); err != nil {
		t.Fatal(err)
	}
	// "app/etc" is both a file and a directory: the build fails after
	// some files were placed, and the old trail must survive.
	sha := f.shas["app/root.squashfs"]
	st, err := state.Parse([]byte(`{"#spec":"` + state.Spec + `","app/etc":"` + sha + `","app/etc/x.json":{}}`))
	if err != nil {
		t.Skipf("state rejects file/dir conflicts itself: %v", err)
	}
	if err := s.Materialize("8", st); err == nil {
		t.Fatalf("Materialize(conflicting keys) = nil, want error")
	}
	if !sameFile(t, filepath.Join(s.TrailDir("8"), "app/root.squashfs"), s.ObjectPath(sha)) {
		t.Errorf("existing trail damaged")
	}
	if tmp := dotEntries(t, filepath.Join(s.Root(), "trails")); len(tmp) != 0 {
		t.Errorf("temp entries left: %v", tmp)
	}
}

// TestReplaceRevision: MAKE_FACTORY's replacement keeps nothing of the
// old revision (trail, .pv/ files, config, .bind copies, logs, disks)
// and leaves no temp behind; a failure leaves the old one whole.
func TestReplaceRevision(t *testing.T) {
	s := newStorage(t)
	oldSt := stateOf(t, map[string]any{"a/file": putContent(t, s, "old"), "a/x.bind": putContent(t, s, "bind-old")})
	if err := s.Materialize("0", oldSt); err != nil {
		t.Fatal(err)
	}
	dir := s.TrailDir("0")
	for _, f := range []string{".pv/progress", ".pv/done", ".pv/commitmsg"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "a/x.bind"), []byte("changed by its container"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(s.LogDir, "0"), filepath.Join(s.Root(), "disks", "rev", "0")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	newSt := stateOf(t, map[string]any{"b/file": putContent(t, s, "new"), "a/x.bind": putContent(t, s, "bind-new")})

	// A missing object fails before anything changes.
	bad := stateOf(t, map[string]any{"b/file": shaOf([]byte("not stored"))})
	if err := s.ReplaceRevision("0", bad); !errors.Is(err, ErrMissingObject) {
		t.Errorf("ReplaceRevision(missing object) = %v, want ErrMissingObject", err)
	}
	if got := readFile(t, filepath.Join(dir, ".pv/progress")); got != "old" {
		t.Errorf("old .pv/progress after a failed replacement = %q", got)
	}

	if err := s.ReplaceRevision("0", newSt); err != nil {
		t.Fatalf("ReplaceRevision = %v", err)
	}
	if b, _ := s.StateJSON("0"); string(b) != string(newSt.Canonical()) {
		t.Errorf("trails/0/.pvr/json = %s, want the new state", b)
	}
	if got := readFile(t, filepath.Join(dir, "a/x.bind")); got != "bind-new" {
		t.Errorf("a/x.bind = %q, want a fresh copy of the object", got)
	}
	if !sameFile(t, filepath.Join(dir, "b/file"), s.ObjectPath(shaOf([]byte("new")))) {
		t.Error("b/file is not a link of its object")
	}
	for _, p := range []string{filepath.Join(dir, "a/file"), filepath.Join(dir, ".pv/progress"), filepath.Join(dir, ".pv/done"),
		filepath.Join(dir, ".pv/commitmsg"), filepath.Join(s.LogDir, "0"), filepath.Join(s.Root(), "disks", "rev", "0")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s of the old revision kept", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, configFile)); err != nil {
		t.Errorf("no %s: %v", configFile, err)
	}
	if names := append(dotEntries(t, s.trailsDir()), dotEntries(t, s.LogDir)...); len(names) != 0 {
		t.Errorf("temp entries left: %v", names)
	}
}
