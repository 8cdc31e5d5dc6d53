package pvrsdk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/pvrsdk/webtest"
)

// The web UI in a real browser: Debian's headless Chromium driven over
// CDP (webtest) against the real handler and a pv-ctrl stand-in. The
// App Engine suite tests/sdk/3 runs the same steps against a real
// Pantavisor. Screenshots of the main views go to
// $PV_TEST_ARTIFACTS/webui (default: the test's temporary directory).

// artifacts is the directory for the test's screenshots.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PV_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "webui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWebUIBrowser: the page shows the running revision and its
// containers; an update goes through it (begin, upload a pvr export,
// remove a part, commit and run, progress watched to DONE through a
// moment the device does not answer); logs are followed; user metadata
// is saved and deleted; on a phone-sized screen nothing is wider than
// the screen. No script error on the way.
func TestWebUIBrowser(t *testing.T) {
	dir := artifacts(t)
	p, err := webtest.Open(context.Background(), webtest.Options{Shots: dir, Logf: t.Logf})
	if errors.Is(err, webtest.ErrNoBrowser) {
		testenv.Skipf(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t.Logf("screenshots in %s", dir)
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	f, c := startCtrl(t, baseState(), rootfs)
	f.containers = []map[string]any{
		{"name": "app", "group": "app", "status": "STARTED", "status_goal": "STARTED", "roles": []string{}},
		{"name": "pvr-sdk", "group": "platform", "status": "STARTED", "status_goal": "STARTED", "roles": []string{"mgmt"}},
	}
	// The page sees the run in progress, loses the device for a moment
	// (pvr-sdk or Pantavisor restarting), then sees it DONE.
	f.progress = []string{"INPROGRESS", "INPROGRESS", "FAIL", "FAIL", "INPROGRESS"}
	logs := t.TempDir()
	pvlog := filepath.Join(logs, "current", "pantavisor", "pantavisor.log")
	os.MkdirAll(filepath.Dir(pvlog), 0o755)
	os.WriteFile(pvlog, []byte("one\ntwo\nthree\n"), 0o644)
	os.MkdirAll(filepath.Join(logs, "current", "app", "lxc"), 0o755)
	os.WriteFile(filepath.Join(logs, "current", "app", "lxc", "console.log"), []byte("app says hi\n"), 0o644)
	ts := newServer(t, c, Options{LogDir: logs, Poll: 20 * time.Millisecond})

	web := []byte("web")
	pkg := filepath.Join(t.TempDir(), "web.tar.gz")
	os.WriteFile(pkg, export(t, map[string]any{"#spec": "pantavisor-service-system@1", "web/root.squashfs": sha(web),
		"web/run.json": map[string]any{"name": "web"}}, map[string][]byte{"objects/" + sha(web): web}), 0o644)

	st, err := p.Open(ts.URL)
	check(err)
	if st.Revision != "0" || st.Status != "DONE" || len(st.Containers) != 2 || st.Containers["pvr-sdk"] != "STARTED" ||
		!strings.Contains(st.Step, `"app/run.json"`) {
		t.Errorf("status view = %+v, want revision 0 DONE, app and pvr-sdk STARTED, the state", st)
	}
	check(p.OpenDetails())
	check(p.Shot("status"))

	check(p.Begin(false))
	check(p.Upload(pkg, 0))
	check(p.Remove("app"))
	tx, err := p.Transaction()
	check(err)
	if !strings.Contains(tx, `"web/run.json"`) || strings.Contains(tx, "app/") {
		t.Errorf("transaction = %s, want web without app", tx)
	}
	check(p.Shot("transaction"))
	rev, status, err := p.CommitAndRun(0)
	check(err)
	check(p.Shot("update-done"))
	if !strings.HasPrefix(rev, "locals/pvtx-") || status != "DONE" {
		t.Errorf("run = %s %s, want locals/pvtx-… DONE", rev, status)
	}
	f.mu.Lock()
	state, cmds, left := string(f.steps[rev]), strings.Join(f.commands, ";"), len(f.progress)
	f.mu.Unlock()
	if !strings.Contains(state, `"web/run.json"`) || strings.Contains(state, "app/") {
		t.Errorf("committed %s = %s, want web without app", rev, state)
	}
	if cmds != "LOCAL_RUN "+rev {
		t.Errorf("commands = %q, want LOCAL_RUN %s", cmds, rev)
	}
	if left != 0 {
		t.Errorf("progress answers left = %d, want 0: the page stopped watching before DONE", left)
	}

	check(p.FollowLogs("pantavisor", "three\n", 0))
	fh, err := os.OpenFile(pvlog, os.O_APPEND|os.O_WRONLY, 0)
	check(err)
	fh.WriteString("four\n")
	fh.Close()
	check(p.WaitLog("four\n", 0))
	check(p.Shot("logs"))
	check(p.StopLogs())
	if log, _ := p.Log(); log != "one\ntwo\nthree\nfour\n" {
		t.Errorf("log view = %q, want the file then the followed line", log)
	}

	check(p.SaveMeta("pvr-sdk.note", "set from the web UI"))
	check(p.DeleteMeta("fleet.channel"))
	check(p.Shot("usermeta"))
	f.mu.Lock()
	meta := f.userMeta
	f.mu.Unlock()
	if len(meta) != 1 || meta["pvr-sdk.note"] != "set from the web UI" {
		t.Errorf("user metadata = %v, want only pvr-sdk.note", meta)
	}

	l, err := p.Phone(ts.URL)
	check(err)
	check(p.Shot("phone"))
	if l.Overflow > 0 || len(l.Shown) > 0 {
		t.Errorf("on a 390 px screen the page is %d px too wide and shows the hidden %v", l.Overflow, l.Shown)
	}
	if got := p.Problems(); len(got) > 0 {
		t.Errorf("the page reported:\n%s", strings.Join(got, "\n"))
	}
}
