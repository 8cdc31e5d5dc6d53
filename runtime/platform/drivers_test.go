package platform

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// recDrivers records what Host asks of the drivers manager.
type recDrivers struct {
	mu   sync.Mutex
	log  []string
	fail string // platform whose Ensure fails
}

func (r *recDrivers) Ensure(p string, refs state.DriverRefs) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "ensure "+p+" "+strings.Join(refs.Required, ","))
	if p == r.fail {
		return errors.New("required driver \"net\": modprobe dummy: no such module")
	}
	return nil
}

func (r *recDrivers) Release(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "release "+p)
}

func (r *recDrivers) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.log, "; ")
}

// TestHostDrivers starts real containers: a platform's required drivers
// are ensured before its container starts and released once it stopped;
// a platform whose required driver does not load never starts and the
// tick fails.
func TestHostDrivers(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "running containers needs root")
	}
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	img, err := rootfs.Build(rootfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := Paths{
		Storage: filepath.Join(dir, "storage"), Volumes: filepath.Join(dir, "volumes"),
		Configs: filepath.Join(dir, "configs"), Run: filepath.Join(dir, "run"), Logs: filepath.Join(dir, "logs"),
	}
	st := mkState(t, map[string]string{
		"dok":  `"group":"root","drivers":{"required":["net"]}`,
		"dbad": `"group":"root","drivers":{"required":["net"]}`,
	}, "")
	trail := filepath.Join(paths.Storage, "trails", "1")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dok", "dbad"} {
		d := filepath.Join(trail, name)
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "root.squashfs"), data, 0o644))
		must(t, os.WriteFile(filepath.Join(d, "lxc.container.conf"), []byte(rootfs.LXCConf(rootfs.Conf{Name: name})), 0o644))
	}
	e, err := New(st, Options{Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHost(quiet(), paths, st, "1")
	rec := &recDrivers{fail: "dbad"}
	h.Drivers = rec
	ctx := context.Background()
	defer h.Close(ctx)
	failures := drive(t, ctx, e, h, func() bool {
		ok, _ := e.Info("dok")
		return ok.Status == Started && strings.Contains(rec.String(), "release dbad")
	})
	if i, _ := e.Info("dbad"); i.Status == Started {
		t.Errorf("dbad started without its required driver")
	}
	if len(failures) != 1 || failures[0].Platform != "dbad" {
		di, _ := e.Info("dbad")
		t.Errorf("failures = %v, want one for dbad (dbad %+v, drivers %s)", failures, di, rec)
	}
	for _, a := range e.StopAll() {
		more, err := h.Do(ctx, e, a)
		if err != nil {
			t.Errorf("Do(%v) = %v", a, err)
		}
		for _, m := range more {
			h.Do(ctx, e, m)
		}
	}
	got := rec.String()
	for _, want := range []string{"ensure dok net", "ensure dbad net; release dbad", "release dok"} {
		if !strings.Contains(got, want) {
			t.Errorf("drivers calls %q, want %q in them", got, want)
		}
	}
	if strings.Index(got, "ensure dok") > strings.Index(got, "release dok") {
		t.Errorf("drivers calls %q: dok released before it was ensured", got)
	}
}
