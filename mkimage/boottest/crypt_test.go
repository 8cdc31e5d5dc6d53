package boottest

import (
	"encoding/json"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// TestCryptVolume installs a revision whose device.json has a
// dm-crypt-versatile disk (key generated on its first boot, volume
// formatted with the initrd's mke2fs) holding pv--usrmeta, as the seeds'
// example does. Its try boot saves a user-meta key (on the encrypted
// volume), waits for the commit and reboots; the next boot must open the
// same volume with the kept key and find the key there, while the image
// file on storage holds no plaintext of it.
func TestCryptVolume(t *testing.T) {
	img, off := image(t)
	if marker() == "PV-SMOKE-OK" {
		t.Skip("disks need the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	const rev = "locals/crypt"
	const image = "/storage/dm-crypt-files/secrets/versatile.img"
	m := newMachine(t, img, off)
	base := factoryState(t, img, off)
	if !hasAddon(t, base, "debug") {
		testenv.Skipf(t, "the crypt test types in the debug shell: build the image with the debug addon (PANTAVISOR_DEBUG=yes)")
	}
	r := newRevision(t, base, rev, func(e *edit) {
		dev := map[string]any{}
		if raw, ok := e.doc["device.json"]; ok {
			if err := json.Unmarshal(raw, &dev); err != nil {
				t.Fatalf("device.json: %v", err)
			}
		}
		dev["disks"] = []map[string]string{{"name": "secrets", "type": "dm-crypt-versatile", "path": image + ",16,versatile_key"}}
		dev["volumes"] = map[string]any{"pv--usrmeta": map[string]string{"disk": "secrets", "persistence": "permanent"}}
		e.inline(t, "device.json", dev)
	})

	m.cycleBoot(t, "factory boot, install "+rev, Options{Image: img, Disks: []string{r.disk(t)},
		Marker: restartLine,
		Expect: []string{readyLine("0"), runOK},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine("0"), Keys: m.installKeys(rev)},
		}})
	// the value is typed as s$((6*7)): only the saved one reads s42
	m.cycleBoot(t, "try "+rev+": save a key, commit, reboot", Options{Image: img,
		Marker: restartLine,
		Expect: []string{readyLine(rev), "crypt-saved", "pv-cycle-progress " + rev + " {", "crypt-dm=versatile"},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine(rev), Keys: "pventer -c pv-mgmt pvcontrol usrmeta save crypt.k s$((6*7)) && echo crypt-saved\n" + showProgress(rev)},
			{After: "pv-cycle-progress " + rev + " {", Keys: "echo crypt-dm=$(grep -hx versatile /sys/block/dm-*/dm/name)\npventer -c pv-mgmt pvcontrol cmd reboot\nexit\n"},
		}})
	m.cycleBoot(t, "reboot "+rev+": the key is back", Options{Image: img,
		Marker: "crypt-k=s42 crypt-dm=versatile crypt-plain=0",
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine(rev), Keys: "echo crypt-k=$(cat /pv/user-meta/crypt.k) crypt-dm=$(grep -hx versatile /sys/block/dm-*/dm/name) crypt-plain=$(grep -c s42 " + image + ")\n"},
		}})
}
