package webtest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// The user's steps through the web UI. Each waits for the page to show
// the result, or for the page's error line, whose text it returns.

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// until waits for pred or the page's error line.
func (p *Page) until(what, pred string, wait time.Duration) error {
	if err := p.Wait(what, `!document.getElementById("error").hidden || (`+pred+`)`, wait); err != nil {
		return err
	}
	msg, err := Eval[string](p, `document.getElementById("error").hidden ? "" : document.getElementById("error").textContent`)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if msg != "" {
		p.Shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		return fmt.Errorf("%s: the page says %q", what, msg)
	}
	return nil
}

// Status is what the page shows of the running revision.
type Status struct {
	Revision, Status string
	// Containers maps a container's name to its status.
	Containers map[string]string
	// Step is the state JSON the page shows.
	Step string
}

// Open loads the UI from base ("http://host:port"; / sends to /app/) and
// returns what it shows once the containers and the state are there.
func (p *Page) Open(base string) (Status, error) {
	var st Status
	if err := p.Do("open", chromedp.Navigate(base+"/")); err != nil {
		return st, err
	}
	return p.status()
}

// Refresh reloads the status view.
func (p *Page) Refresh() (Status, error) {
	if err := p.Do("refresh", chromedp.Evaluate[chromedp.Void](`document.getElementById("step").textContent = ""`), chromedp.Click(chromedp.ID("refresh"))); err != nil {
		return Status{}, err
	}
	return p.status()
}

func (p *Page) status() (Status, error) {
	st := Status{Containers: map[string]string{}}
	if err := p.until("status shown", `document.querySelectorAll("#containers tbody tr").length > 0 && document.getElementById("step").textContent !== ""`, 0); err != nil {
		return st, err
	}
	rows, err := Eval[[][]string](p, `Array.from(document.querySelectorAll("#containers tbody tr"), tr => Array.from(tr.cells, td => td.textContent))`)
	if err != nil {
		return st, err
	}
	for _, r := range rows {
		st.Containers[r[0]] = r[2]
	}
	for _, f := range []struct {
		sel string
		to  *string
	}{{"#rev", &st.Revision}, {"#rev-status", &st.Status}, {"#step", &st.Step}} {
		if *f.to, err = p.Text(f.sel); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Begin starts a transaction (from the running revision, or empty).
func (p *Page) Begin(empty bool) error {
	steps := []chromedp.Action[chromedp.Void]{}
	if empty {
		steps = append(steps, chromedp.Click(chromedp.ID("tx-empty")))
	}
	steps = append(steps, chromedp.Evaluate[chromedp.Void](`document.getElementById("tx-state").textContent = ""`), chromedp.Click(chromedp.ID("tx-begin")))
	if err := p.Do("begin", steps...); err != nil {
		return err
	}
	return p.until("transaction begun", `document.getElementById("tx-info").textContent === "Transaction started."`, 0)
}

// Upload adds a pvr export tarball to the transaction.
func (p *Page) Upload(export string, wait time.Duration) error {
	if err := p.Do("upload", chromedp.SetUploadFiles(chromedp.ID("tx-file"), []string{export}), chromedp.Click(chromedp.CSS("#tx-add button"))); err != nil {
		return err
	}
	return p.until("export added", `document.getElementById("tx-info").textContent === `+js("Added "+filepath.Base(export)+"."), wait)
}

// Remove removes a part from the transaction.
func (p *Page) Remove(part string) error {
	if err := p.Do("remove", chromedp.SetValue(chromedp.ID("tx-part"), part), chromedp.Click(chromedp.CSS("#tx-remove button"))); err != nil {
		return err
	}
	return p.until("part removed", `document.getElementById("tx-info").textContent === `+js("Removed "+part+"."), 0)
}

// Transaction is the transaction state the page shows.
func (p *Page) Transaction() (string, error) { return p.Text("#tx-state") }

// CommitAndRun commits the transaction, runs it and watches its progress
// until it is final; it returns the revision and its final status.
func (p *Page) CommitAndRun(wait time.Duration) (rev, status string, err error) {
	if err := p.Do("commit and run", chromedp.Click(chromedp.ID("tx-commit"))); err != nil {
		return "", "", err
	}
	if err := p.until("run final", `["DONE", "ERROR", "WONTGO", "CANCELLED"].includes(document.getElementById("run-status").textContent) && !document.getElementById("tx-commit").disabled`, wait); err != nil {
		return "", "", err
	}
	if rev, err = p.Text("#run-rev"); err != nil {
		return "", "", err
	}
	status, err = p.Text("#run-status")
	return rev, status, err
}

// FollowLogs shows the logs of source with follow on and waits for
// want.
func (p *Page) FollowLogs(source, want string, wait time.Duration) error {
	if err := p.until("log sources", `Array.from(document.getElementById("log-source").options, o => o.value).includes(`+js(source)+`)`, wait); err != nil {
		return err
	}
	if err := p.Do("follow logs", chromedp.SetValue(chromedp.ID("log-source"), source),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("log-follow").checked = true`),
		chromedp.Click(chromedp.CSS("#log-form button[type=submit]"))); err != nil {
		return err
	}
	return p.WaitLog(want, wait)
}

// WaitLog waits until the log view holds want.
func (p *Page) WaitLog(want string, wait time.Duration) error {
	return p.until("log shows "+want, `document.getElementById("log").textContent.includes(`+js(want)+`)`, wait)
}

// Log is the log view's text.
func (p *Page) Log() (string, error) { return p.Text("#log") }

// StopLogs stops following.
func (p *Page) StopLogs() error { return p.Do("stop logs", chromedp.Click(chromedp.ID("log-stop"))) }

// SaveMeta saves a user metadata key.
func (p *Page) SaveMeta(key, value string) error {
	if err := p.Do("save usermeta", chromedp.SetValue(chromedp.ID("meta-key"), key), chromedp.SetValue(chromedp.ID("meta-value"), value),
		chromedp.Click(chromedp.CSS("#meta-form button"))); err != nil {
		return err
	}
	return p.until("usermeta saved", `Array.from(document.querySelectorAll("#meta tbody tr"), tr => tr.cells[0].textContent + "=" + tr.cells[1].textContent).includes(`+js(key+"="+value)+`)`, 0)
}

// DeleteMeta deletes a user metadata key with its row's button.
func (p *Page) DeleteMeta(key string) error {
	if err := p.Do("delete usermeta", chromedp.Click(chromedp.CSS(`button[aria-label=`+js("Delete "+key)+`]`))); err != nil {
		return err
	}
	return p.until("usermeta deleted", `!Array.from(document.querySelectorAll("#meta tbody tr"), tr => tr.cells[0].textContent).includes(`+js(key)+`)`, 0)
}

// Meta is the user metadata the page lists.
func (p *Page) Meta() (map[string]string, error) {
	return Eval[map[string]string](p, `Object.fromEntries(Array.from(document.querySelectorAll("#meta tbody tr"), tr => [tr.cells[0].textContent, tr.cells[1].textContent]))`)
}

// Layout is how the page fits a screen.
type Layout struct {
	// Overflow is how many CSS pixels the page is wider than the screen.
	Overflow int
	// Shown lists the boxes that should be hidden on a fresh page but
	// are displayed.
	Shown []string
}

// Phone reloads the UI on a phone-sized screen (390×844 CSS px, mobile)
// and measures its layout.
func (p *Page) Phone(base string) (Layout, error) {
	var l Layout
	if err := p.Do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)), chromedp.Navigate(base+"/app/")); err != nil {
		return l, err
	}
	if _, err := p.status(); err != nil {
		return l, err
	}
	var err error
	if l.Overflow, err = Eval[int](p, `document.documentElement.scrollWidth - window.innerWidth`); err != nil {
		return l, err
	}
	l.Shown, err = Eval[[]string](p, `["run-box", "error"].filter(id => getComputedStyle(document.getElementById(id)).display !== "none")`)
	return l, err
}

// OpenDetails opens the collapsed state views (for screenshots).
func (p *Page) OpenDetails() error {
	return p.Do("open details", chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("details").forEach(d => d.open = true)`))
}
