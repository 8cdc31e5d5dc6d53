package boottest

import (
	"encoding/json"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// TestDrivers installs a revision whose BSP offers two managed drivers
// made of harmless modules of the image's modules.squashfs — "net"
// (dummy, its numdummies parameter from user-meta) and "mon" (nlmon) —
// and whose pv-mgmt requires "net" and lists "mon" as manual. On its try
// boot: dummy is loaded with the user-meta parameter before pv-mgmt
// starts (numdummies=2 makes dummy0 and dummy1; its default is one),
// GET /drivers from pv-mgmt reports the real statuses, and
// PUT /drivers/mon/load|unload loads and unloads nlmon.
func TestDrivers(t *testing.T) {
	img, off := image(t)
	if marker() == "PV-SMOKE-OK" {
		t.Skip("drivers need the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	const rev = "locals/drivers"
	m := newMachine(t, img, off)
	base := factoryState(t, img, off)
	if !hasAddon(t, base, "debug") {
		testenv.Skipf(t, "the drivers test types in the debug shell: build the image with the debug addon (PANTAVISOR_DEBUG=yes)")
	}
	r := newRevision(t, base, rev, func(e *edit) {
		e.inline(t, "bsp/drivers.json", map[string]any{
			"#spec": "driver-aliases@1",
			"all": map[string][]string{
				"net": {"dummy numdummies=${user-meta:drivers.dummy.n}"},
				"mon": {"nlmon"},
			},
		})
		var run map[string]any
		if err := json.Unmarshal(e.doc["pv-mgmt/run.json"], &run); err != nil {
			t.Fatalf("pv-mgmt/run.json: %v", err)
		}
		run["drivers"] = map[string][]string{"required": {"net"}, "manual": {"mon"}}
		e.inline(t, "pv-mgmt/run.json", run)
	})

	m.cycleBoot(t, "factory boot, install "+rev, Options{Image: img, Disks: []string{r.disk(t)},
		Marker: restartLine,
		Expect: []string{readyLine("0"), runOK},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine("0"), Keys: "pventer -c pv-mgmt pvcontrol usrmeta save drivers.dummy.n 2\n" + m.installKeys(rev)},
		}})

	const (
		netLoaded   = `{"name":"net","type":"REQUIRED","status":"LOADED"}`
		monUnloaded = `{"name":"mon","type":"MANUAL","status":"UNLOADED"}`
		monLoaded   = `{"name":"mon","type":"MANUAL","status":"LOADED"}`
	)
	order := []string{readyLine(rev), "drv-n=2", monUnloaded, "drv-mon=live", monLoaded, "drv-mon-gone=0", "drv-42-done"}
	res := m.cycleBoot(t, "try "+rev, Options{Image: img,
		Marker: "drv-42-done",
		Expect: append(order, netLoaded),
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine(rev), Keys: "echo drv-n=$(ls /sys/class/net | grep -c '^dummy')\n" +
				"pventer -c pv-mgmt pvcurl /drivers; echo\n" +
				"pventer -c pv-mgmt pvcurl -f -X PUT /drivers/mon/load && echo drv-mon=$(cat /sys/module/nlmon/initstate)\n" +
				"pventer -c pv-mgmt pvcurl /drivers; echo\n" +
				"pventer -c pv-mgmt pvcurl -f -X PUT /drivers/mon/unload && echo drv-mon-gone=$(ls /sys/module | grep -c '^nlmon$')\n" +
				"echo drv-$((40+2))-done\n"},
		}})
	for i := 1; i < len(order); i++ {
		if res.Seen[order[i]] < res.Seen[order[i-1]] {
			t.Errorf("%q (%s) before %q (%s)", order[i], res.Seen[order[i]], order[i-1], res.Seen[order[i-1]])
		}
	}
}
