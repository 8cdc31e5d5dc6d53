package pvrsdk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// The web UI in a real browser: Debian's headless Chromium driven over
// CDP (chromedp) against the real handler and a pv-ctrl stand-in.
// Screenshots of the main views go to $PV_TEST_ARTIFACTS/webui (default:
// the test's temporary directory).

// browser starts a headless Chromium with a fresh profile and no
// network of its own, and returns a chromedp context for one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		testenv.Skipf(t, "chromium not installed (Debian chromium)")
	}
	profile, err := os.MkdirTemp("", "pvrsdk-chromium")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Chromium's helpers can still write the profile for a moment
		// after the browser ends; retry, bounded.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	return ctx
}

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

// page runs browser steps with a deadline per step, names the step that
// failed, and keeps screenshots.
type page struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript predicate until it holds.
func (p *page) wait(what, pred string) {
	p.t.Helper()
	p.do(what, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](pred, chromedp.WithPollingInterval(50*time.Millisecond))(ctx, t)
		return chromedp.Void{}, err
	})
}

func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (p *page) shot(name string) {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err == nil {
		err = os.WriteFile(filepath.Join(p.dir, name+".png"), buf, 0o644)
	}
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// problems starts collecting what the page reports as broken: script
// exceptions, console.error calls and error log entries (a refused
// Content-Security-Policy among them). The API's own 4xx answers (the
// network's log entries) are part of the page's normal work.
func (p *page) problems() func() []string {
	p.t.Helper()
	var mu sync.Mutex
	var got []string
	err := chromedp.Listen(p.ctx, func(ev any) {
		var s string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			s = (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error()
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				s = fmt.Sprintf("console.error %v", ev.Args)
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				s = fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if s != "" {
			mu.Lock()
			got = append(got, s)
			mu.Unlock()
		}
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestWebUIBrowser: the page shows the running revision and its
// containers; an update goes through it (begin, upload a pvr export,
// remove a part, commit and run, progress watched to DONE through a
// moment the device does not answer); logs are
// followed; user metadata is saved and deleted; on a phone-sized screen
// nothing is wider than the screen. No script error on the way.
func TestWebUIBrowser(t *testing.T) {
	ctx := browser(t)
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

	p := &page{t: t, ctx: ctx, dir: artifacts(t)}
	problems := p.problems()
	t.Logf("screenshots in %s", p.dir)

	p.do("open", chromedp.Navigate(ts.URL+"/"))
	p.wait("status shown", `document.querySelectorAll("#containers tbody tr").length === 2 && document.getElementById("step").textContent.includes("app/run.json")`)
	if got := p.text("#rev"); got != "0" {
		t.Errorf("revision = %q, want 0", got)
	}
	if got := p.text("#rev-status"); got != "DONE" {
		t.Errorf("status = %q, want DONE", got)
	}
	if got := p.text("#containers tbody"); !strings.Contains(got, "pvr-sdk") || !strings.Contains(got, "mgmt") {
		t.Errorf("containers = %q, want pvr-sdk with role mgmt", got)
	}
	p.do("open the state", chromedp.Click(chromedp.CSS("#step-box summary")))
	p.shot("status")

	p.do("begin", chromedp.Click(chromedp.ID("tx-begin")))
	p.wait("transaction shown", `document.getElementById("tx-state").textContent.includes("app/root.squashfs")`)
	p.do("upload", chromedp.SetUploadFiles(chromedp.ID("tx-file"), []string{pkg}), chromedp.Click(chromedp.CSS("#tx-add button")))
	p.wait("export added", `document.getElementById("tx-state").textContent.includes("web/run.json")`)
	p.do("remove app", chromedp.SendKeys(chromedp.ID("tx-part"), "app"), chromedp.Click(chromedp.CSS("#tx-remove button")))
	p.wait("app removed", `document.getElementById("tx-info").textContent === "Removed app." && !document.getElementById("tx-state").textContent.includes("app/run.json")`)
	p.do("open the transaction", chromedp.Click(chromedp.CSS("#tx-box summary")))
	p.shot("transaction")
	p.do("commit and run", chromedp.Click(chromedp.ID("tx-commit")))
	p.wait("run DONE", `document.getElementById("run-status").textContent === "DONE"`)
	rev := p.text("#run-rev")
	if !strings.HasPrefix(rev, "locals/pvtx-") {
		t.Errorf("run revision = %q, want locals/pvtx-…", rev)
	}
	p.shot("update-done")
	f.mu.Lock()
	st, cmds, left := string(f.steps[rev]), strings.Join(f.commands, ";"), len(f.progress)
	f.mu.Unlock()
	if !strings.Contains(st, `"web/run.json"`) || strings.Contains(st, "app/") {
		t.Errorf("committed %s = %s, want web without app", rev, st)
	}
	if cmds != "LOCAL_RUN "+rev {
		t.Errorf("commands = %q, want LOCAL_RUN %s", cmds, rev)
	}
	if left != 0 {
		t.Errorf("progress answers left = %d, want 0: the page stopped watching before DONE", left)
	}

	p.wait("log sources", `Array.from(document.getElementById("log-source").options).map(o => o.value).join() === "app,pantavisor"`)
	p.do("follow logs", chromedp.Click(chromedp.ID("log-follow")), chromedp.Click(chromedp.CSS("#log-form button[type=submit]")))
	p.wait("log shown", `document.getElementById("log").textContent === "one\ntwo\nthree\n"`)
	fh, err := os.OpenFile(pvlog, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("four\n")
	fh.Close()
	p.wait("followed line shown", `document.getElementById("log").textContent.endsWith("three\nfour\n")`)
	p.shot("logs")
	p.do("stop following", chromedp.Click(chromedp.ID("log-stop")))

	p.do("save usermeta", chromedp.SendKeys(chromedp.ID("meta-key"), "pvr-sdk.note"),
		chromedp.SendKeys(chromedp.ID("meta-value"), "set from the web UI"), chromedp.Click(chromedp.CSS("#meta-form button")))
	p.wait("usermeta saved", `document.getElementById("meta").textContent.includes("set from the web UI")`)
	p.do("delete usermeta", chromedp.Click(chromedp.CSS(`button[aria-label="Delete fleet.channel"]`)))
	p.wait("usermeta deleted", `!document.getElementById("meta").textContent.includes("fleet.channel")`)
	p.shot("usermeta")
	f.mu.Lock()
	meta := fmt.Sprint(f.userMeta)
	f.mu.Unlock()
	if meta != "map[pvr-sdk.note:set from the web UI]" {
		t.Errorf("user metadata = %s, want only pvr-sdk.note", meta)
	}

	p.do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)), chromedp.Navigate(ts.URL+"/app/"))
	p.wait("status shown on the phone", `document.querySelectorAll("#containers tbody tr").length === 2`)
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil || wide > 0 {
		t.Errorf("page on a 390 px screen is %d px too wide (%v)", wide, err)
	}
	// Until an update runs, its progress box stays out of the way (and
	// no error is shown).
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`["run-box", "error"].filter(id => getComputedStyle(document.getElementById(id)).display !== "none")`))
	if err != nil || len(shown) > 0 {
		t.Errorf("hidden boxes shown on a fresh page: %v (%v)", shown, err)
	}
	p.shot("phone")
	if got := problems(); len(got) > 0 {
		t.Errorf("the page reported:\n%s", strings.Join(got, "\n"))
	}
}
