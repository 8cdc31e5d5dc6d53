package builder

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"

	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// TestGoBuildIncremental builds a small cgo program with goBuild and
// checks when it is linked again: not when nothing changed, but when the
// program file was modified, when a C library it links against changed
// (which go's cache does not see) and when its source changed.
func TestGoBuildIncremental(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Skipf(t, "no go command")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		testenv.Skipf(t, "no C compiler for cgo (Debian build-essential)")
	}
	host, err := arch.Host()
	if err != nil {
		t.Skip(err)
	}
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/hello\n\ngo 1.21\n")
	src := filepath.Join(mod, "cmd/hello/main.go")
	writeFile(t, src, "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { println(C.abs(-1)) }\n")
	b := &run{o: Options{Repo: mod}, r: &recipe.Recipe{Arch: host.Debian}, arch: host, res: &Result{}}
	out := filepath.Join(t.TempDir(), "bin")
	prog := filepath.Join(out, "hello")
	// The C libraries are looked up in a copy of the host's, so the test
	// can change one.
	root := t.TempDir()
	// Links are counted through -toolexec (go touches an up-to-date
	// program, so its time stamps do not tell).
	tools := t.TempDir()
	links := filepath.Join(tools, "links")
	writeFile(t, filepath.Join(tools, "toolexec"), "#!/bin/sh\ncase \"$1 $2\" in */link\\ -o) echo \"$@\" >>"+links+";; esac\nexec \"$@\"\n")
	if err := os.Chmod(filepath.Join(tools, "toolexec"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOFLAGS", "-toolexec="+filepath.Join(tools, "toolexec"))
	build := func() (linked bool) {
		t.Helper()
		os.Remove(links)
		if err := b.goBuild(context.Background(), []string{"./cmd/hello"}, out, true, nil, root, nil); err != nil {
			t.Fatalf("goBuild() = %v", err)
		}
		_, err := os.Stat(links)
		return err == nil
	}
	if !build() {
		t.Fatal("first build linked nothing")
	}
	libs, err := initrd.Sysroot{Dir: "/"}.Needed([]string{prog})
	if err != nil || len(libs) == 0 {
		testenv.Skipf(t, "libraries of a cgo program: %v, %v", libs, err)
	}
	for _, l := range libs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, l), string(data))
	}
	if !build() {
		t.Error("the library set changed (a new root): not linked again")
	}
	first, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		change func(t *testing.T)
		linked bool
		same   bool // the program has the first build's bytes
	}{
		{"no change", func(t *testing.T) {}, false, true},
		{"program modified", func(t *testing.T) {
			f, err := os.OpenFile(prog, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0})
			f.Close()
		}, true, true},
		{"program deleted", func(t *testing.T) { os.Remove(prog) }, true, true},
		{"C library changed", func(t *testing.T) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(root, libs[len(libs)-1]), later, later); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"source changed", func(t *testing.T) {
			writeFile(t, src, "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { println(C.abs(-2)) }\n")
		}, true, false},
		{"no change again", func(t *testing.T) {}, false, false},
	} {
		tt.change(t)
		if got := build(); got != tt.linked {
			t.Errorf("%s: linked = %v, want %v", tt.name, got, tt.linked)
		}
		data, err := os.ReadFile(prog)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Equal(data, first); got != tt.same {
			t.Errorf("%s: program same as the first build = %v, want %v", tt.name, got, tt.same)
		}
	}
}

// TestCleanWork: a new build starts from an empty work directory except
// the go outputs and the storage objects.
func TestCleanWork(t *testing.T) {
	work := t.TempDir()
	for _, f := range []string{"bin/pantavisor", "bin/.stamp", "bin-static/pvcontrol", "storage/objects/ab",
		"storage/trails/0/bsp/kernel.img", "storage/boot/grubenv", "sysroot/lib/libc.so.6", "modules/kernel/a.ko", "bsp/pantavisor", "binx"} {
		writeFile(t, filepath.Join(work, f), "x")
	}
	if err := os.Symlink("bin", filepath.Join(work, "storage", "objects2")); err != nil {
		t.Fatal(err)
	}
	if err := cleanWork(work); err != nil {
		t.Fatalf("cleanWork() = %v", err)
	}
	var left []string
	filepath.WalkDir(work, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(work, p)
			left = append(left, rel)
		}
		return nil
	})
	want := []string{"bin/.stamp", "bin/pantavisor", "bin-static/pvcontrol", "storage/objects/ab"}
	if !reflect.DeepEqual(left, want) {
		t.Errorf("after cleanWork() = %v, want %v", left, want)
	}
	if err := cleanWork(filepath.Join(work, "missing")); err != nil {
		t.Errorf("cleanWork(missing) = %v, want nil", err)
	}
}
