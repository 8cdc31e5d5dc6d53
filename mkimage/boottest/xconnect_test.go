package boottest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/builder"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
	"github.com/pantavisor/pantavisor-go/runtime/pvtest"
)

// TestXconnectDRM proves pv-xconnect's drm plugin with a real DRM device:
// QEMU's standard VGA, which the image's coldplug drives with bochs
// (bochs-drm) beside the containers' start. A variant of PV_TEST_IMAGE's
// target adds two containers (pvtest's fixtures, pvr exports): "xc-drm"
// exports its /dev/dri/card0 (the device's /dev, bound whole) as the drm
// service "display"; "xc-drm-consumer", in group app with LXC's own /dev,
// requires it with role master at /dev/dri/card0. Its init waits for the
// node (the driver may come after the consumer started: pv-xconnect tries
// again until the provider's node exists), opens it and asks
// DRM_IOCTL_VERSION (xcserve drm), then lists its device nodes and tries
// to make one of the device's disk. The debug shell prints its console
// log. The test wants: the node at the target, a character device 226:0
// answering driver bochs-drm; no other device of the machine in the
// consumer's /dev (LXC's own nodes only, no disk, no other DRM node);
// the disk's node it makes cannot be opened (EPERM): its device allow
// list (pvtest.DRMConsumerDevices) is enforced, on cgroup2 too. A third
// container, "xc-drm-refused", requires the same service but its allow
// list lacks the DRM nodes: pv-xconnect must log that its cgroup refuses
// c 226:0 (on cgroup2 it cannot grant the node itself).
// Whether bochs-drm came before or after the consumer is the boot's
// chance, so a second phase makes it late for sure: the consumer stopped,
// bochs-drm unbound from the VGA, the consumer started again (its link
// fails), bochs-drm bound again 2 s later; the restarted consumer must
// get the node after the bind, with the same checks.
func TestXconnectDRM(t *testing.T) {
	r := imageRecipe(t)
	if marker() == "PV-SMOKE-OK" {
		t.Skip("the containers need the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	if r.Arch != "amd64" || r.Bootloader.Type != recipe.BootGrub {
		t.Skipf("the fixtures are made of the host's amd64 busybox, and bochs is a PC's VGA; %s is %s", r.Name, r.Arch)
	}
	if a, err := arch.Lookup(r.Arch); err != nil {
		t.Fatal(err)
	} else if _, err := exec.LookPath(a.QEMU); err != nil {
		testenv.Skipf(t, "no %s (Debian qemu-system-*)", a.QEMU)
	}
	for _, tool := range []string{"mksquashfs", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "no %s (Debian squashfs-tools, busybox-static): the fixtures' root file systems", tool)
		}
	}
	tmp := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	xc := filepath.Join(tmp, "xcserve")
	build := exec.Command("go", "build", "-trimpath", "-o", xc, "./runtime/pvtest/xcserve")
	build.Dir, build.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build xcserve: %v: %s", err, out)
	}
	fx := pvtest.Fixtures{CacheDir: filepath.Join(tmp, "fixtures"), XCServe: xc}
	v := *r
	v.Addons = append([]string(nil), r.Addons...)
	v.Containers = append([]recipe.Container(nil), r.Containers...)
	for _, kind := range []string{pvtest.KindXCDRM, pvtest.KindXCDRMConsumer, pvtest.KindXCDRMRefused} {
		p, err := fx.Build(kind)
		if err != nil {
			t.Fatal(err)
		}
		// recipe sources are relative to the repository
		rel, err := filepath.Rel(repo, p)
		if err != nil {
			t.Fatal(err)
		}
		v.Containers = append(v.Containers, recipe.Container{Name: kind, Source: rel})
	}
	t0 := time.Now()
	res, err := builder.Build(context.Background(), builder.Options{Repo: repo, Recipe: &v,
		Out: filepath.Join(tmp, "out"), Cache: os.Getenv("PV_CACHE"), Offline: true, Debug: "yes",
		Epoch: 1700000000, Init: builder.InitPantavisor})
	if err != nil {
		t.Fatalf("build the variant of %s: %v", r.Name, err)
	}
	t.Logf("built the variant in %s", time.Since(t0).Round(100*time.Millisecond))

	timeout := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		timeout = d
	}
	const (
		consumer = "platform=" + pvtest.KindXCDRMConsumer + " status=STARTED"
		unbound  = "xc-drm-unbound-0"
		done     = "xc-drm-late-42"
		// pv-xconnect's error for the consumer whose device rules lack DRM
		// (cgroup2: its device program, which pv-xconnect cannot add to).
		refused = "its cgroup (/lxc/" + pvtest.KindXCDRMRefused + ") refuses c 226:0 rwm"
	)
	log := "/storage/logs/0/" + pvtest.KindXCDRMConsumer + "/lxc/console.log"
	// The typed commands hold none of the awaited strings (xc-drm-don[e],
	// $((6*7)), …).
	show := fmt.Sprintf("until grep -q xc-drm-don[e] %s 2>/dev/null; do sleep 1; done; sed 's/^/consumer: /' %s; "+
		"echo host-card0=$(basename $(readlink /sys/class/drm/card0/device/driver)); echo xc-drm-logs-$((6*7))\n", log, log)
	// The late case, for sure: the consumer stopped, bochs-drm unbound
	// from the VGA (the card node leaves the device's /dev and the
	// provider's), the consumer started again (its link fails: no node),
	// and bochs-drm bound again 2 s after the consumer's init said it
	// started.
	pvcontrol := "pventer -c pv-mgmt pvcontrol containers"
	late := fmt.Sprintf("%[2]s stop %[3]s >/dev/null; "+
		"until %[2]s ls | grep -q '\"%[3]s\",\"group\":\"app\",\"status\":\"STOPPED\"'; do sleep 1; done; "+
		"V=$(basename $(readlink /sys/class/drm/card0/device)); echo $V > /sys/bus/pci/drivers/bochs-drm/unbind; "+
		"echo xc-drm-unbound-$(ls /dev/dri | wc -l); : > %[1]s; "+
		"%[2]s start %[3]s >/dev/null; "+
		"until grep -q 'started a[t]' %[1]s 2>/dev/null; do sleep 1; done; sleep 2; "+
		"echo rebind at $(cut -d' ' -f1 /proc/uptime) | sed 's/^/late: xc-drm: /'; echo $V > /sys/bus/pci/drivers/bochs-drm/bind; "+
		"until grep -q xc-drm-don[e] %[1]s; do sleep 1; done; sed 's/^/late: /' %[1]s; echo xc-drm-late-$((6*7))\n",
		log, pvcontrol, pvtest.KindXCDRMConsumer)
	opt := Options{Image: res.Image, Firmware: UEFI, Timeout: timeout, Marker: done,
		Expect: []string{readyLine("0"), "platform=" + pvtest.KindXCDRM + " status=STARTED", consumer, "host-card0=bochs-drm", unbound, refused},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine("0"), Keys: show},
			{After: "xc-drm-logs-42", Keys: late},
		}}
	if f := consoleFile(t); f != nil {
		opt.Console = f
	}
	boot, err := Boot(context.Background(), opt)
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(boot.Console, 60))
	}
	t.Logf("%q after %s", consumer, boot.Seen[consumer].Round(100*time.Millisecond))
	// When the driver came and pv-xconnect linked the node, if the console
	// shows it (the kernel's and pv-xconnect's logs).
	for _, s := range []string{"Initialized bochs-drm ", `link added" consumer=` + pvtest.KindXCDRMConsumer, refused} {
		if i := strings.Index(boot.Console, s); i >= 0 {
			t.Logf("console: %s", lineAt(boot.Console, i))
		}
	}
	// The check that refused xc-drm-refused ran for the consumer too.
	if i := strings.Index(boot.Console, "cannot check that the consumer may open the node"); i >= 0 {
		t.Errorf("pv-xconnect could not check a node: %s", lineAt(boot.Console, i))
	}
	first := consumerLines(boot.Console, "consumer: xc-drm: ")
	t.Logf("the consumer's console:\n%s", strings.Join(first, "\n"))
	ts := checkDRMConsumer(t, first)
	// The kernel's timestamps and the consumer's uptimes are one clock.
	if m := bochsInit.FindStringSubmatch(boot.Console); m != nil && ts.node > 0 {
		at, _ := strconv.ParseFloat(m[1], 64)
		order := "after"
		if at < ts.started {
			order = "before"
		}
		t.Logf("bochs-drm came %.2f s %s the consumer's init started; the node was in the consumer %.2f s after its start, answered %.2f s later",
			abs(at-ts.started), order, ts.node-ts.started, ts.usable-ts.node)
	}

	second := consumerLines(boot.Console, "late: xc-drm: ")
	t.Logf("the restarted consumer's console, bochs-drm bound again after it started:\n%s", strings.Join(second, "\n"))
	var rebind float64
	for _, l := range second {
		if v, ok := strings.CutPrefix(l, "rebind at "); ok {
			rebind, _ = strconv.ParseFloat(v, 64)
		}
	}
	ts = checkDRMConsumer(t, second)
	if rebind <= ts.started || ts.node <= rebind {
		t.Errorf("the restarted consumer started at %.2f, bochs-drm bound at %.2f, the node there at %.2f: want that order", ts.started, rebind, ts.node)
	} else {
		t.Logf("late node: in the consumer %.2f s after bochs-drm was bound again, answered %.2f s later", ts.node-rebind, ts.usable-ts.node)
	}
}

// consumerLines are the console lines that start with prefix, cut.
func consumerLines(console, prefix string) []string {
	var out []string
	for _, l := range strings.Split(console, "\n") {
		if l, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), prefix); ok {
			out = append(out, l)
		}
	}
	return out
}

// bochsInit is the kernel's line when bochs-drm's card node exists.
var bochsInit = regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\] \[drm\] Initialized bochs-drm `)

func abs(f float64) float64 { return max(f, -f) }

// consumerNode is a "node <path> <type> <hex major>:<hex minor>" line of
// the consumer (busybox stat's %F %t:%T).
var consumerNode = regexp.MustCompile(`^node (\S+) (character special file|block special file) ([0-9a-f]+):([0-9a-f]+)$`)

// lxcDevices are the char majors LXC's own /dev holds: mem (null, zero,
// full, random, urandom, kmsg), tty (tty, ptmx) and the pts of the
// console and ttys.
var lxcDevices = map[uint64]bool{1: true, 5: true, 136: true}

// consumerTimes are the uptimes at which the consumer's init started, saw
// the node and had its answer (0 when it did not say).
type consumerTimes struct{ started, node, usable float64 }

// checkDRMConsumer checks the consumer's console lines (xc-drm: cut).
func checkDRMConsumer(t *testing.T, lines []string) (ts consumerTimes) {
	t.Helper()
	var version, usable, probe string
	drm := 0
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "drm /dev/dri/card0 "):
			version = l
		case strings.HasPrefix(l, "usable at "):
			usable = l
		case strings.HasPrefix(l, "node at "):
			ts.node, _ = strconv.ParseFloat(strings.TrimPrefix(l, "node at "), 64)
		case strings.HasPrefix(l, "probe vda "):
			probe = l
		}
		m := consumerNode.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		maj, _ := strconv.ParseUint(m[3], 16, 32)
		min, _ := strconv.ParseUint(m[4], 16, 32)
		switch {
		case m[1] == "/dev/dri/card0":
			drm++
			if m[2] != "character special file" || maj != 226 || min != 0 {
				t.Errorf("the injected node is a %s %d:%d, want a character device 226:0", m[2], maj, min)
			}
		case m[2] == "block special file" || !lxcDevices[maj]:
			t.Errorf("the consumer sees %s (%s %d:%d), which the graph did not grant", m[1], m[2], maj, min)
		}
	}
	if drm != 1 {
		t.Errorf("the consumer's /dev has %d nodes /dev/dri/card0 listed, want 1", drm)
	}
	if !strings.Contains(version, " char 226:0 driver=bochs-drm ") {
		t.Errorf("DRM_IOCTL_VERSION in the consumer: %q, want char 226:0 driver=bochs-drm", version)
	}
	// "usable at <uptime> (started at <uptime>)"
	if f := strings.Fields(usable); len(f) == 6 {
		at, err1 := strconv.ParseFloat(f[2], 64)
		start, err2 := strconv.ParseFloat(strings.TrimSuffix(f[5], ")"), 64)
		if err1 == nil && err2 == nil {
			ts.usable, ts.started = at, start
		}
	} else {
		t.Errorf("no usable line: %q", usable)
	}
	// Its device allow list lets it make the disk's node but not open it:
	// on cgroup2, LXC's device program, fed the container's rules.
	t.Logf("consumer's mknod of the disk: %s", probe)
	if !strings.HasPrefix(probe, "probe vda open refused: ") || !strings.Contains(probe, "not permitted") {
		t.Errorf("the consumer's node of the disk: %q, want its open refused (EPERM: the device cgroup)", probe)
	}
	if ts.node == 0 || ts.node > ts.usable {
		t.Errorf("no node line before the usable one (node at %.2f, usable at %.2f)", ts.node, ts.usable)
	}
	return ts
}

// lineAt is the console line holding byte i.
func lineAt(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return strings.TrimRight(s[start:i+end], "\r")
}
