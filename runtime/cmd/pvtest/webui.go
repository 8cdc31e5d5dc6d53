package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/pvrsdk/webtest"
)

const webuiUsage = "usage: pvtest webui <base-url> <export.tar.gz> [part to remove]"

// webuiCmd drives pvr-sdk's web UI in headless Chromium against a real
// Pantavisor: status, an update through the page (begin, upload the
// export, remove a part, commit and run, watched to a final status),
// Pantavisor's log (it names pvr-sdk), user
// metadata, the phone layout. It prints what the page shows in a stable
// form for the golden output; screenshots go to
// $PV_TEST_ARTIFACTS/webui-appengine when that is set.
func webuiCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return errors.New(webuiUsage)
	}
	base, export, part := strings.TrimSuffix(args[0], "/"), args[1], ""
	if len(args) > 2 {
		part = args[2]
	}
	source, text := "pantavisor", "pvr-sdk"
	o := webtest.Options{}
	if dir := os.Getenv("PV_TEST_ARTIFACTS"); dir != "" {
		o.Shots = filepath.Join(dir, "webui-appengine")
		if err := os.MkdirAll(o.Shots, 0o755); err != nil {
			return err
		}
	}
	p, err := webtest.Open(ctx, o)
	if err != nil {
		return err
	}
	defer p.Close()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "page: "+format+"\n", a...) }

	st, err := p.Open(base)
	if err != nil {
		return err
	}
	say("revision %s %s", st.Revision, st.Status)
	for _, n := range slices.Sorted(maps.Keys(st.Containers)) {
		say("container %s %s", n, st.Containers[n])
	}
	p.OpenDetails()
	p.Shot("status")

	if err := p.Begin(false); err != nil {
		return err
	}
	if err := p.Upload(export, 0); err != nil {
		return err
	}
	if part != "" {
		if err := p.Remove(part); err != nil {
			return err
		}
	}
	p.Shot("transaction")
	rev, status, err := p.CommitAndRun(5 * time.Minute)
	if err != nil {
		return err
	}
	p.Shot("update-done")
	name := rev
	if strings.HasPrefix(rev, "locals/pvtx-") {
		name = "locals/pvtx-…"
	}
	say("update %s %s", name, status)
	if st, err = p.Refresh(); err != nil {
		return err
	}
	say("running the update: %v", st.Revision == rev)

	if err := p.FollowLogs(source, text, time.Minute); err != nil {
		return err
	}
	p.Shot("logs")
	if err := p.StopLogs(); err != nil {
		return err
	}
	say("logs of %s show %q", source, text)

	if err := p.SaveMeta("webui.note", "from the browser"); err != nil {
		return err
	}
	say("usermeta webui.note saved")
	p.Shot("usermeta")

	l, err := p.Phone(base)
	if err != nil {
		return err
	}
	p.Shot("phone")
	say("phone: %d px too wide, hidden boxes shown %v", l.Overflow, l.Shown)
	say("script errors %d", len(p.Problems()))
	for _, s := range p.Problems() {
		fmt.Fprintln(os.Stderr, s)
	}
	return nil
}
