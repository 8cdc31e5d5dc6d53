package boottest

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// TestRaspiVcio boots the rpiab image on QEMU's raspi3b/raspi2b, types
// "d" at the countdown on the console's UART (RaspiMachine: on raspi3b
// the mini UART, the PL011 being the Bluetooth UART) and, from the
// debug shell, makes firmware property calls through /dev/vcio with
// the vcmailbox applet: Debian's kernel has no /dev/vcio, so the first
// call loads our pv-vcio module from the BSP's modules.squashfs. QEMU
// emulates the property channel: GET_FIRMWARE_REVISION answers 346337
// (0x548e1), and SET_REBOOT_FLAGS (the rpiab backend's tryboot arming,
// a tag QEMU ignores) must be accepted.
func TestRaspiVcio(t *testing.T) {
	_, r, _ := rpiImage(t)
	if os.Getenv("PV_TEST_MARKER") == "" {
		t.Skip("the debug shell needs the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	img, _ := image(t)
	l, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ReadRaspiBoot(img, l.PartByName("boot_a").Start, r.Arch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	timeout := 15 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		timeout = v
	}
	const (
		mgmt = "platform=pv-mgmt status=STARTED"
		// $((...)) makes the markers differ from the typed commands the
		// shell echoes.
		revDone = "vcio-2rev-"
		armDone = "vcio-2arm-"
	)
	res, err := Boot(context.Background(), Options{Image: img, Arch: r.Arch, Firmware: Raspi, Raspi: &rb, Timeout: timeout,
		Marker: armDone,
		Expect: []string{debugshell.OpenedLine, mgmt, revDone},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: mgmt, Keys: "ls /dev/vcio; pantavisor vcmailbox 0x00000001 4 0 0; echo vcio-$((1+1))rev-$?\n"},
			{After: revDone, Keys: "ls -l /dev/vcio; grep pv_vcio /proc/modules; pantavisor vcmailbox 0x00038064 4 4 1; echo vcio-$((1+1))arm-$?\n"},
		}})
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 40))
	}
	c := res.Console
	if i := strings.Index(c, debugshell.OpenedLine); i >= 0 {
		c = c[i:]
	}
	t.Logf("debug shell:\n%s", tail(c, 30))
	checks := []struct{ what, re string }{
		{"no /dev/vcio before the first call", `/dev/vcio: No such file or directory`},
		{"GET_FIRMWARE_REVISION answered by QEMU (346337)", `0x0000001c 0x80000000 0x00000001 0x00000004 0x80000004 0x000548e1 0x00000000`},
		{"the revision call succeeded", `vcio-2rev-0`},
		{"/dev/vcio is a root-only character device", `crw-------.*/dev/vcio`},
		{"pv_vcio is loaded", `(?m)^pv_vcio `},
		{"SET_REBOOT_FLAGS accepted", `0x0000001c 0x80000000 0x00038064 0x00000004 0x8000000[04] `},
		{"the arming call succeeded", `vcio-2arm-0`},
	}
	for _, ch := range checks {
		if !regexp.MustCompile(ch.re).MatchString(c) {
			t.Errorf("%s: console has no %q", ch.what, ch.re)
		}
	}
}
