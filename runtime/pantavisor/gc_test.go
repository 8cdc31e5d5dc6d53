package pantavisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/command"
	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
	"github.com/pantavisor/pantavisor-go/runtime/update"
)

// testUpdater is runtime/pantavisor/updater for this package's own tests
// (that package imports this one): the real update.Updater over the
// storage's uboot.txt.
type testUpdater struct{ *update.Updater }

func newTestUpdater(env Env) (Updater, error) {
	bl, err := bootloader.Open(bootloader.Options{Type: "uboot", Storage: env.Storage.Root(), Cmdline: env.Cmdline})
	if err != nil {
		return nil, err
	}
	u, err := update.New(update.Options{Storage: env.Storage, Bootloader: bl, Clock: env.Clock, Log: env.Log,
		GC: update.GCPolicy{Threshold: env.Config.Int(config.StorageGCThreshold),
			DeferTime: env.Config.Duration(config.StorageGCThresholdDeferTime)}})
	if err != nil {
		return nil, err
	}
	return testUpdater{u}, nil
}

func (a testUpdater) Step(ctx context.Context) (Next, error) {
	n, err := a.Updater.Step(ctx)
	return Next(n), err
}

func (a testUpdater) Run(ctx context.Context, c command.Command) (Next, error) {
	n, err := a.Updater.Run(ctx, c)
	return Next(n), err
}

const tryRev = "locals/try"

// tryingStorage is a device in a try: the boot loader's pv_rev is 0
// (committed, DONE) and pv_try locals/try, booted and TESTING; a junk
// revision that any GC removes shows when one ran.
func tryingStorage(t *testing.T) string {
	t.Helper()
	dir := newStorage(t)
	st, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{tryRev, "locals/junk"} {
		if err := st.WriteStateJSON(rev, strings.NewReader(emptyState)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.WriteProgress("0", progress.New(progress.Done, progress.MsgFactory)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDone("0"); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteProgress(tryRev, progress.New(progress.Testing, progress.MsgTestingReboot)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := bootloader.OpenUbootFile(filepath.Join(dir, "boot", "uboot.txt"))
	if err := env.Set(bootloader.VarRev, "0"); err != nil {
		t.Fatal(err)
	}
	if err := env.Set(bootloader.VarTry, tryRev); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startTrying(t *testing.T, dir string, env ...string) *instance {
	return start(t, dir, func(o *Options) {
		o.Cmdline = "pv_rev=" + tryRev + " pv_try=" + tryRev + " pv_appengine"
		o.NewUpdater = newTestUpdater
		o.Env = append(o.Env, env...)
	})
}

// awaitGone polls until rev's trail is gone: a GC ran.
func awaitGone(t *testing.T, dir, rev string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "trails", rev)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trails/%s still there: no GC ran", rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantKept(t *testing.T, dir string, revs ...string) {
	t.Helper()
	for _, rev := range revs {
		if _, err := os.Stat(filepath.Join(dir, "trails", rev, ".pvr", "json")); err != nil {
			t.Errorf("trails/%s after GC during a try: %v, want kept", rev, err)
		}
	}
}

// TestGCInTryKeepsCommitted: during a try (pv_rev=0, pv_try=X booted),
// every GC path keeps the boot loader's committed revision 0, the one a
// failed try falls back to (issue 11, defect 4): it used to keep the
// running revision as the committed one and delete 0.
func TestGCInTryKeepsCommitted(t *testing.T) {
	t.Run("storage/gc", func(t *testing.T) {
		dir := tryingStorage(t)
		in := startTrying(t, dir)
		if got, b := in.call(t, "POST", "/storage/gc", nil); got != 200 {
			t.Fatalf("POST /storage/gc = %d %s", got, b)
		}
		awaitGone(t, dir, "locals/junk")
		wantKept(t, dir, "0", tryRev)
	})
	t.Run("RUN_GC", func(t *testing.T) {
		dir := tryingStorage(t)
		in := startTrying(t, dir)
		if got, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"RUN_GC","payload":""}`)); got != 200 {
			t.Fatalf("RUN_GC = %d %s", got, b)
		}
		awaitGone(t, dir, "locals/junk")
		wantKept(t, dir, "0", tryRev)
	})
	t.Run("threshold", func(t *testing.T) {
		dir := tryingStorage(t)
		startTrying(t, dir, "PV_STORAGE_GC_THRESHOLD=100") // always below
		awaitGone(t, dir, "locals/junk")
		// A second junk gone means a whole WAIT round ran after the
		// first GC, whatever else collects in it.
		st, err := storage.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.WriteStateJSON("locals/junk2", strings.NewReader(emptyState)); err != nil {
			t.Fatal(err)
		}
		awaitGone(t, dir, "locals/junk2")
		wantKept(t, dir, "0", tryRev)
	})
}

// TestGCWithoutUpdater: with no updater the daemon does not know the
// boot loader's committed revision, so it refuses to collect.
func TestGCWithoutUpdater(t *testing.T) {
	dir := tryingStorage(t)
	in := start(t, dir, func(o *Options) { o.Cmdline = "pv_rev=" + tryRev + " pv_try=" + tryRev + " pv_appengine" })
	if got, b := in.call(t, "POST", "/storage/gc", nil); got != 501 {
		t.Errorf("POST /storage/gc without updater = %d %s, want 501", got, b)
	}
	wantKept(t, dir, "0", tryRev, "locals/junk")
}
