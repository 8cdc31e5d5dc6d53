package boottest

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// nopCloser collects typed keys.
type nopCloser struct{ bytes.Buffer }

func (*nopCloser) Close() error { return nil }

// TestTypist feeds console bytes in awkward pieces (a step's text split
// between reads, a prompt without a newline) and checks what is typed.
func TestTypist(t *testing.T) {
	for _, tt := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"prompt without newline", []string{"boot\n", "\rPress [d] for debug ash shell... 5 "}, "d"},
		{"split text", []string{"\rPress [d] for de", "bug ash shell... 5 "}, "d"},
		{"in order", []string{"Press [d] for debug ash shell... 5 d\r\nshell opened\r\n/ # echo x\r\nx\r\n"}, "decho x\nexit\n"},
		{"second text before first", []string{"shell opened\n", "x\n"}, ""},
		{"nothing", []string{"kernel\n", "more\n"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var keys nopCloser
			ty := typist{keys: &keys, steps: []Input{
				{After: "Press [d] for debug ash shell", Keys: "d"},
				{After: "shell opened", Keys: "echo x\n"},
				{After: "x\r\n", Keys: "exit\n"},
			}}
			var buf []byte
			for _, c := range tt.chunks {
				buf = append(buf, c...)
				// Split as bufio.Scanner does: again and again over what
				// is buffered, dropping what was advanced over.
				for {
					adv, _, _ := ty.lines(buf, false)
					if adv == 0 {
						break
					}
					buf = buf[adv:]
				}
			}
			if got := keys.String(); got != tt.want {
				t.Errorf("typed %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDebugShell boots a Pantavisor image (PV_TEST_IMAGE with
// PV_TEST_MARKER set: its /init is the daemon, not the smoke probe), types
// "d" at the countdown and runs a command in the debug shell on the serial
// console. Once pv-mgmt runs, it asks for a reboot from the shell through
// the control socket (pventer, pvcontrol): the reboot waits while the
// shell is open, DEFER_REBOOT is accepted, and only "exit" lets the
// machine restart. SeaBIOS only: the shell does not care about the
// firmware.
func TestDebugShell(t *testing.T) {
	t.Parallel()
	img, _ := image(t)
	if os.Getenv("PV_TEST_MARKER") == "" {
		t.Skip("the debug shell needs the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	timeout := 10 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		timeout = v
	}
	const (
		mgmt     = "platform=pv-mgmt status=STARTED"
		pending  = "debug shell: reboot pending"
		deferred = "debug shell: reboot deferred until"
		restart  = "reboot: Restarting system" // the kernel's last word
	)
	order := []string{debugshell.OpenedLine, mgmt, "shell-42", pending, deferred, "rc-0", debugshell.ClosedLine, restart}
	res, err := Boot(context.Background(), Options{Image: img, Firmware: BIOS, Timeout: timeout,
		Marker: restart,
		Expect: order,
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: mgmt, Keys: "echo shell-$((6*7))\n"},
			{After: "shell-42", Keys: "pventer -c pv-mgmt pvcontrol cmd reboot\n"},
			{After: pending, Keys: "pventer -c pv-mgmt pvcontrol cmd defer-reboot; echo rc-$?\n"},
			{After: "rc-0", Keys: "exit\n"},
		}})
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 40))
	}
	// The daemon logs the deferral as it answers the request: its line and
	// the shell's rc-0 may come in either order, both between the
	// pending reboot and the shell's close.
	before := func(a, b string) {
		if res.Seen[b] < res.Seen[a] {
			t.Errorf("%q (%s) before %q (%s)", b, res.Seen[b], a, res.Seen[a])
		}
	}
	seq := []string{debugshell.OpenedLine, mgmt, "shell-42", pending, "rc-0", debugshell.ClosedLine, restart}
	for i := 1; i < len(seq); i++ {
		before(seq[i-1], seq[i])
	}
	before(pending, deferred)
	before(deferred, debugshell.ClosedLine)
	if strings.Contains(res.Console, debugshell.AgainHint) {
		t.Error("another shell offered while the reboot was pending")
	}
	// The console from the countdown to the restart, without the kernel's
	// and the containers' lines.
	c := res.Console
	if i := strings.LastIndex(c, debugshell.Prompt); i >= 0 {
		c = c[strings.LastIndex(c[:i+1], "\n")+1:]
	}
	var keep []string
	for _, l := range strings.Split(c, "\n") {
		if !strings.HasPrefix(l, "[ ") && !strings.HasPrefix(l, "[pv-") || strings.Contains(l, restart) {
			keep = append(keep, l)
		}
	}
	t.Logf("%q after %s:\n%s", res.MarkerLine, res.Elapsed.Round(100*time.Millisecond), strings.Join(keep, "\n"))
}
