// Package webtest drives the pvr-sdk web UI (runtime/pvrsdk, /app/) in
// Debian's headless Chromium over CDP (chromedp), as a user would: the
// browser tests' shared steps. runtime/pvrsdk's test runs them against
// a pv-ctrl stand-in, the App Engine suite (pvtest webui) against a real
// Pantavisor.
//
//	p, err := webtest.Open(ctx, webtest.Options{Shots: dir, Logf: t.Logf})
//	defer p.Close()
//	st, err := p.Status(baseURL)
//	run, err := p.Update(export, "")
package webtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ErrNoBrowser is returned by Open when no Chromium is installed.
var ErrNoBrowser = errors.New("chromium not installed (Debian chromium)")

// Options configure a browser.
type Options struct {
	// Shots is where screenshots are written ("" = none).
	Shots string
	// Logf receives chromedp's messages; nil discards them.
	Logf func(string, ...any)
	// Step bounds one step (a click, a wait); 0 = 30 s.
	Step time.Duration
}

// Page is one tab of a headless Chromium with a fresh profile.
type Page struct {
	o       Options
	ctx     context.Context
	cancel  func()
	profile string

	mu       sync.Mutex
	problems []string
}

// Open starts Chromium. The browser has no network of its own (no
// background or component fetches): the machine may have none.
func Open(ctx context.Context, o Options) (*Page, error) {
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		return nil, ErrNoBrowser
	}
	if o.Step <= 0 {
		o.Step = 30 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	profile, err := os.MkdirTemp("", "webtest-chromium")
	if err != nil {
		return nil, fmt.Errorf("browser profile: %w", err)
	}
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
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(o.Logf))
	p := &Page{o: o, ctx: tctx, profile: profile, cancel: func() { cancelTab(); cancelAlloc() }}
	if err := chromedp.Listen(tctx, p.collect); err != nil {
		p.Close()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	return p, nil
}

// Close ends the browser and removes its profile.
func (p *Page) Close() {
	p.cancel()
	// Chromium's helpers can still write the profile for a moment after
	// the browser ends; retry, bounded.
	for range 50 {
		if os.RemoveAll(p.profile) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// collect keeps what the page reports as broken: script exceptions,
// console.error calls and error log entries (a refused
// Content-Security-Policy among them). The API's 4xx answers (the
// network's log entries) are part of the page's normal work.
func (p *Page) collect(ev any) {
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
		p.mu.Lock()
		p.problems = append(p.problems, s)
		p.mu.Unlock()
	}
}

// Problems returns what the page reported as broken so far.
func (p *Page) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.problems)
}

// Do runs steps within one step's time; what names them in the error.
// A failed step leaves a screenshot failed-<what>.png.
func (p *Page) Do(what string, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.o.Step)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.Shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Wait polls a JavaScript predicate until it holds (within wait, 0 = one
// step's time).
func (p *Page) Wait(what, pred string, wait time.Duration) error {
	if wait <= 0 {
		wait = p.o.Step
	}
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](pred, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(wait)))
	if err != nil {
		p.Shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Eval evaluates a JavaScript expression.
func Eval[T any](p *Page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.o.Step)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// Text is the text content of the first element sel selects.
func (p *Page) Text(sel string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.o.Step)
	defer cancel()
	return chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
}

// Shot writes a full-page PNG screenshot <name>.png to Options.Shots.
func (p *Page) Shot(name string) error {
	if p.o.Shots == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.o.Step)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		return fmt.Errorf("screenshot %s: %w", name, err)
	}
	return os.WriteFile(filepath.Join(p.o.Shots, name+".png"), buf, 0o644)
}
