package boottest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// Console texts the cycle waits for.
const (
	restartLine  = "reboot: Restarting system" // the kernel's last word before a reboot
	powerOffLine = "reboot: Power down"
	addonFile    = "/etc/pv-cycle"
)

// grubLine is what grub.cfg (and boot.scr) prints before it loads a
// revision (the start of it: GRUB's serial terminal wraps long lines; the
// boot env checks after each boot say what the env held).
func grubLine(boot string) string {
	return fmt.Sprintf("pantavisor: booting revision %s (", boot)
}

func readyLine(rev string) string { return "rev=" + rev + " status=READY" }

// progressLine is what the shell prints for a revision's progress (see
// showProgress): the typed command echoes `$(…)`, the output the JSON
// (which the echo of the next typed command may follow on the line).
var progressLine = regexp.MustCompile(`pv-cycle-progress (\S+) (\{.*)`)

// installKeys types, in the debug shell, the install of the revision on
// the second disk through the mgmt container's pvcontrol (PUT
// /objects/<sha>, PUT /steps/<name>), LOCAL_RUN, and the shell's exit,
// which lets the reboot of the update happen.
func (m machine) installKeys(rev string) string {
	return "cat " + UpdateDisk(m.machine) + " | pventer -c pv-mgmt pvcontrol steps install /proc/self/fd/0 " + rev +
		" && pventer -c pv-mgmt pvcontrol cmd run " + rev + " && echo pv-cycle-run-$((6*7))\nexit\n"
}

const runOK = "pv-cycle-run-42"

// showProgress waits in the shell until rev's progress is final and
// prints it, then progressShown: keys typed after that one cannot echo
// into the JSON while a slow serial console is still printing it.
func showProgress(rev string) string {
	return `pventer -c pv-mgmt sh -c 'while ! pvcontrol steps progress ` + rev + ` | grep -qE "\"(DONE|UPDATED|ERROR|WONTGO)\""; do sleep 1; done'; ` +
		`echo "pv-cycle-progress ` + rev + ` $(pventer -c pv-mgmt pvcontrol steps progress ` + rev + `)"; echo pv-cycle-shown-$((6*7))` + "\n"
}

const progressShown = "pv-cycle-shown-42"

// progressOf returns the progress status the console shows for rev.
func progressOf(t *testing.T, console, rev string) (status, msg string) {
	t.Helper()
	for _, m := range progressLine.FindAllStringSubmatch(console, -1) {
		if m[1] != rev {
			continue
		}
		var p struct {
			Status string `json:"status"`
			Msg    string `json:"status-msg"`
		}
		if err := json.NewDecoder(strings.NewReader(m[2])).Decode(&p); err != nil {
			t.Fatalf("progress of %s: %v: %s", rev, err, m[2])
		}
		return p.Status, p.Msg
	}
	t.Fatalf("no progress of %s on the console", rev)
	return "", ""
}

// machine is how the cycle boots the image and reads its boot env: GRUB
// images under OVMF with grubenv, U-Boot images under U-Boot with
// uboot.txt and pv.env.
type machine struct {
	arch string
	fw   Firmware
	// machine is QEMU's machine type, flash its flash image (or "").
	machine, flash string
	env            func() (bootenv.Vars, error)
	name           string // of the env, for messages
}

func newMachine(t *testing.T, img string, off int64) machine {
	t.Helper()
	r := imageRecipe(t)
	if r.Bootloader.Type == recipe.BootUboot {
		a, err := arch.Lookup(r.Arch)
		if err != nil {
			t.Fatal(err)
		}
		return machine{arch: r.Arch, fw: UBoot, machine: a.Machine, flash: imageFlash(t), env: ubootEnv(t, r, img, off), name: "uboot.txt+pv.env"}
	}
	return machine{arch: r.Arch, fw: UEFI, env: grubEnv{img, off}.vars, name: "grubenv"}
}

// cycleBoot boots once and fails the test unless the marker and every
// expected line came; it logs when each came.
func (m machine) cycleBoot(t *testing.T, step string, o Options) Result {
	t.Helper()
	o.Firmware, o.Arch, o.Flash = m.fw, m.arch, m.flash
	o.Timeout = 10 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		o.Timeout = v
	}
	if f := consoleFile(t); f != nil {
		fmt.Fprintf(f, "\n==== %s\n", step)
		o.Console = f
	}
	start := time.Now()
	res, err := Boot(context.Background(), o)
	if err != nil {
		t.Fatalf("%s: %v\nconsole tail:\n%s", step, err, tail(res.Console, 60))
	}
	var seen []string
	for _, e := range o.Expect {
		seen = append(seen, fmt.Sprintf("%q %s", e, res.Seen[e].Round(100*time.Millisecond)))
	}
	t.Logf("%s: %s in %s (%s)", step, o.Marker, time.Since(start).Round(100*time.Millisecond), strings.Join(seen, ", "))
	return res
}

// consoleFile is PV_TEST_CONSOLE opened for appending (every boot's
// console, for debugging), or nil.
func consoleFile(t *testing.T) *os.File {
	p := os.Getenv("PV_TEST_CONSOLE")
	if p == "" {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// wantEnv checks the boot loader's environment.
func (m machine) wantEnv(t *testing.T, step string, want map[string]string) {
	t.Helper()
	env, err := m.env()
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	for k, v := range want {
		if env.Get(k) != v {
			t.Errorf("%s: %s %s=%q, want %q (env %v)", step, m.name, k, env.Get(k), v, env)
		}
	}
}

// TestUpdateCycle proves Pantavisor's update cycle through the image's
// boot loader under QEMU (GRUB under OVMF, with grubenv; U-Boot as the
// machine's firmware, with boot.scr, uboot.txt and pv.env), one machine
// at a time, each boot a new QEMU process (Boot runs it with -no-reboot):
//
//  1. the factory revision reaches READY with its containers STARTED;
//  2. a revision with a new initrd addon (a changed BSP: a reboot update)
//     is installed from a second disk through the mgmt container's
//     pvcontrol (objects, steps, LOCAL_RUN), tried after the reboot (its
//     addon's file is in the running initramfs) and committed: progress
//     DONE, the boot env's pv_rev is the new revision;
//  3. a revision in which a container's init exits at once (a container
//     of a group with restart policy system) is tried, rolled back by the
//     daemon, and the boot loader boots the committed revision again:
//     the update ends in ERROR;
//  4. the power is cut at a random point while a third revision's try
//     boots: the next boot falls back to the committed revision, which
//     reaches READY with its trail and objects intact, and the update
//     ends in ERROR.
//
// PV_TEST_CYCLE_SEED replays a power cut (the test logs its seed).
func TestUpdateCycle(t *testing.T) {
	t.Parallel() // one machine at a time here, beside the other boot tests
	img, off := image(t)
	if marker() == "PV-SMOKE-OK" {
		t.Skip("the update cycle needs the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	const (
		good   = "locals/cycle-good"
		broken = "locals/cycle-broken"
		cut    = "locals/cycle-cut"
	)
	m := newMachine(t, img, off)
	base := factoryState(t, img, off)
	if !hasAddon(t, base, "debug") {
		testenv.Skipf(t, "the update cycle types in the debug shell: build the image with the debug addon (PANTAVISOR_DEBUG=yes)")
	}
	goodRev := newRevision(t, base, good, func(e *edit) {
		withAddon(t, e, "cycle.cpio.xz4", addon(t, addonFile, "pv-cycle-bsp "+good+"\n"))
	})
	var goodDoc map[string]json.RawMessage
	if err := json.Unmarshal(goodRev.state, &goodDoc); err != nil {
		t.Fatal(err)
	}
	victim, conf := brokenInit(t, img, off, base)
	brokenRev := newRevision(t, goodDoc, broken, func(e *edit) {
		e.object(victim, conf)
	})
	cutRev := newRevision(t, base, cut, func(e *edit) {
		withAddon(t, e, "cycle.cpio.xz4", addon(t, addonFile, "pv-cycle-bsp "+cut+"\n"))
	})
	started := startedLines(t, base) // every container of the factory revision
	total := time.Now()

	// 1 and 2: the factory revision, then the install of the good one.
	m.cycleBoot(t, "factory boot, install "+good, Options{Image: img, Disks: []string{goodRev.disk(t)},
		Marker: restartLine,
		Expect: append([]string{readyLine("0"), runOK}, started...),
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine("0"), Keys: m.installKeys(good)},
		}})
	m.wantEnv(t, "after the install of "+good, map[string]string{"pv_rev": "0", "pv_try": good})

	// 2: the try boot commits it; 3 starts: install the broken revision.
	res := m.cycleBoot(t, "try "+good+", install "+broken, Options{Image: img, Disks: []string{brokenRev.disk(t)},
		Marker: restartLine,
		Expect: append([]string{grubLine(good), readyLine(good), "pv-cycle-bsp " + good, "pv-cycle-progress " + good + " {", runOK}, started...),
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine(good), Keys: "cat " + addonFile + "\n" + showProgress(good)},
			{After: progressShown, Keys: m.installKeys(broken)},
		}})
	// The power cut of step 4 comes within the time this try took from
	// the boot loader to READY.
	window := res.Seen[readyLine(good)] - res.Seen[grubLine(good)]
	if s, msg := progressOf(t, res.Console, good); s != "DONE" {
		t.Fatalf("%s ended %s %q, want DONE", good, s, msg)
	}
	m.wantEnv(t, "after the commit of "+good+" and the install of "+broken, map[string]string{"pv_rev": good, "pv_try": broken})
	if m.fw == UBoot {
		// boot.scr's latch stays set after a commit, as upstream's: only a
		// fallback clears it, and the next try (pv_try != pv_trying) is
		// not mistaken for one that came back.
		m.wantEnv(t, "pv.env after the commit of "+good, map[string]string{"pv_trying": good})
	}

	// 3: the broken try boot rolls back; the boot loader boots the committed revision.
	m.cycleBoot(t, "try "+broken, Options{Image: img, Marker: restartLine,
		Expect: []string{grubLine(broken), "rev=" + broken + " status=ERROR"}})
	m.wantEnv(t, "after the try of "+broken, map[string]string{"pv_rev": good, "pv_try": broken, "pv_trying": broken})
	res = m.cycleBoot(t, "fall back to "+good+", install "+cut, Options{Image: img, Disks: []string{cutRev.disk(t)},
		Marker: restartLine,
		Expect: append([]string{grubLine(good), readyLine(good), "pv-cycle-progress " + broken + " {", runOK}, started...),
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine(good), Keys: showProgress(broken)},
			{After: progressShown, Keys: m.installKeys(cut)},
		}})
	if s, msg := progressOf(t, res.Console, broken); s != "ERROR" {
		t.Errorf("%s ended %s %q, want ERROR", broken, s, msg)
	}
	m.wantEnv(t, "after the install of "+cut, map[string]string{"pv_rev": good, "pv_try": cut, "pv_trying": ""})

	// 4: cut the power while the try boots, within the time the good
	// revision's try took from the boot loader to READY, and at the
	// latest when it starts TESTING: its commit waits
	// PV_UPDATER_COMMIT_DELAY after that.
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PV_TEST_CYCLE_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PV_TEST_CYCLE_SEED: %v", err)
		}
	}
	delay := time.Duration(rand.New(rand.NewPCG(seed, 0)).Int64N(int64(window)))
	t.Logf("power cut: seed %d (PV_TEST_CYCLE_SEED), %s after the boot loader loads %s (window %s)", seed, delay.Round(time.Millisecond), cut, window)
	killed := m.powerCut(t, img, grubLine(cut), "rev="+cut+" status=TESTING", delay)
	t.Logf("power cut after %q", lastLine(killed))
	m.wantEnv(t, "after the power cut", map[string]string{"pv_rev": good, "pv_try": cut, "pv_trying": cut})

	// The boot loader falls back; the committed revision runs and is whole. Power off
	// cleanly so the storage can be read from here.
	res = m.cycleBoot(t, "fall back to "+good+" after the power cut", Options{Image: img,
		Marker: powerOffLine,
		Expect: append([]string{grubLine(good), readyLine(good), "pv-cycle-bsp " + good, "pv-cycle-progress " + cut + " {"}, started...),
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine(good), Keys: "cat " + addonFile + "\n" + showProgress(cut)},
			{After: progressShown, Keys: "pventer -c pv-mgmt pvcontrol cmd poweroff\nexit\n"},
		}})
	if s, msg := progressOf(t, res.Console, cut); s != "ERROR" {
		t.Errorf("%s ended %s %q, want ERROR", cut, s, msg)
	}
	m.wantEnv(t, "after the fallback", map[string]string{"pv_rev": good, "pv_try": "", "pv_trying": ""})
	checkTrail(t, img, off, good, goodRev.state)
	t.Logf("update cycle: %s", time.Since(total).Round(time.Second))
}

// powerCut boots img and kills QEMU delay after the console showed after,
// or at once when it shows latest; it returns the console. The kill is
// the only way this boot may end.
func (m machine) powerCut(t *testing.T, img, after, latest string, delay time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cutter{after: after, latest: latest, delay: delay, cancel: cancel, out: io.Discard}
	if f := consoleFile(t); f != nil {
		fmt.Fprintf(f, "\n==== power cut\n")
		w.out = f
	}
	start := time.Now()
	res, err := Boot(ctx, Options{Image: img, Arch: m.arch, Firmware: m.fw, Flash: m.flash, Timeout: 10 * time.Minute,
		Marker: "pv-cycle: this line never comes", Console: w})
	fired, at := w.fired()
	if !errors.Is(err, ErrNoMarker) || !fired {
		t.Fatalf("power cut boot: %v, cut %v\nconsole tail:\n%s", err, fired, tail(res.Console, 40))
	}
	t.Logf("power cut boot: killed %s after start, %s after %q", time.Since(start).Round(100*time.Millisecond), at.Round(100*time.Millisecond), after)
	return res.Console
}

// cutter is a console writer that cancels the machine delay after a line
// containing after, or at a line containing latest.
type cutter struct {
	after  string
	latest string
	delay  time.Duration
	cancel context.CancelFunc
	out    io.Writer
	mu     sync.Mutex
	timer  *time.Timer
	armed  time.Time     // when after was seen
	at     time.Duration // the cut, from armed
	done   bool
}

func (c *cutter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out.Write(p)
	switch {
	case c.timer == nil && strings.Contains(string(p), c.after):
		c.armed = time.Now()
		c.timer = time.AfterFunc(c.delay, c.cut)
	case c.timer != nil && strings.Contains(string(p), c.latest):
		if c.timer.Stop() {
			go c.cut() // c.mu is held
		}
	}
	return len(p), nil
}

func (c *cutter) cut() {
	c.mu.Lock()
	c.done, c.at = true, time.Since(c.armed)
	c.mu.Unlock()
	c.cancel()
}

// fired reports whether the machine was cut, and when (from after).
func (c *cutter) fired() (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done, c.at
}

// checkTrail reads revision rev's trail from the storage: its state JSON
// is the one installed and every object it names is on the storage with
// its sha256.
func checkTrail(t *testing.T, img string, off int64, rev string, want []byte) {
	t.Helper()
	got, err := debugfsCat(img, off, "/trails/"+rev+"/.pvr/json")
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]json.RawMessage
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("trails/%s/.pvr/json: %v", rev, err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Errorf("trails/%s/.pvr/json has %d keys, want %d", rev, len(a), len(b))
	}
	n := 0
	for k, v := range b {
		var sha string
		if json.Unmarshal(v, &sha) != nil || len(sha) != 64 {
			continue
		}
		if string(a[k]) != string(v) {
			t.Errorf("trails/%s: %s = %s, want %s", rev, k, a[k], v)
		}
		data, err := debugfsCat(img, off, "/objects/"+sha)
		if err != nil {
			t.Errorf("object of %s: %v", k, err)
			continue
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
			t.Errorf("object of %s: %d bytes that do not hash to %s", k, len(data), sha)
		}
		n++
	}
	t.Logf("trails/%s: state as installed, %d objects whole", rev, n)
}

// brokenInit picks a container of the factory state that is not a
// management one and whose group's restart policy is "system" (a change
// of it needs a reboot; its failure fails the update), and returns its
// lxc.container.conf key and that file with an init that exits at once.
func brokenInit(t *testing.T, img string, off int64, base map[string]json.RawMessage) (string, []byte) {
	t.Helper()
	st := parse(t, base)
	for _, p := range st.Platforms() {
		r := st.Resolve(p)
		key := p.Dir + "/lxc.container.conf"
		sha, ok := st.Object(key)
		if p.Mgmt() || r.RestartPolicy != "system" || !ok {
			continue
		}
		conf, err := debugfsCat(img, off, "/objects/"+sha)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(strings.TrimRight(string(conf), "\n"), "\n") {
			if k, _, _ := strings.Cut(l, "="); strings.TrimSpace(k) != "lxc.init.cmd" {
				out = append(out, l)
			}
		}
		out = append(out, "lxc.init.cmd = /bin/busybox false")
		t.Logf("broken revision: %s runs /bin/busybox false", p.Name)
		return key, []byte(strings.Join(out, "\n") + "\n")
	}
	t.Fatal("no container with restart policy system to break in the factory state")
	return "", nil
}

// startedLines are the daemon's console lines of every container of the
// state whose goal is STARTED.
func startedLines(t *testing.T, doc map[string]json.RawMessage) []string {
	t.Helper()
	st := parse(t, doc)
	var out []string
	for _, p := range st.Platforms() {
		if st.Resolve(p).StatusGoal == "STARTED" {
			out = append(out, "platform="+p.Name+" status=STARTED")
		}
	}
	if len(out) == 0 {
		t.Fatal("the factory revision has no container to start")
	}
	return out
}
