package boottest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// TestPvrSDK boots a Pantavisor image whose recipe has the pvr-sdk
// container and makes one pvr round trip against it on the device's
// loopback (where it listens by default) from the debug shell: the
// .pvrremote document, the state as pvr clone reads it, and a pvr post of
// that state, which becomes locals/1 and runs to READY.
func TestPvrSDK(t *testing.T) {
	t.Parallel()
	img, _ := image(t)
	if os.Getenv("PV_TEST_MARKER") == "" {
		t.Skip("pvr-sdk needs the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	hasSDK := false
	for _, c := range imageRecipe(t).Containers {
		hasSDK = hasSDK || c.Name == "pvr-sdk"
	}
	if !hasSDK {
		t.Skip("the image's recipe has no pvr-sdk container")
	}
	timeout := 10 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		timeout = v
	}
	const (
		started = "platform=pvr-sdk status=STARTED"
		remote  = `"json-key":"state"`
		posted  = `"trail-id":"local"`
		running = "rev=locals/1 status=READY"
	)
	// The typed lines must not contain the awaited strings themselves.
	u := "http://127.0.0.1:12368/cgi-bin/pvr"
	res, err := Boot(context.Background(), Options{Image: img, Firmware: BIOS, Timeout: timeout,
		Marker: running,
		Expect: []string{started, remote, "sdk-state-42", posted},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: started, Keys: "w() { pventer -c pvr-sdk wget -qO- \"$@\"; }; until w " + u + "/.pvrremote; do sleep 1; done; echo\n"},
			{After: remote, Keys: "s=$(w " + u + "/state) && case $s in *pantavisor-service-system@1*) echo sdk-state-$((6*7));; esac\n"},
			{After: "sdk-state-42", Keys: "w --post-data \"{\\\"commit-msg\\\":\\\"image test\\\",\\\"rev\\\":1,\\\"state\\\":$s}\" " + u + "/steps; echo\n"},
			{After: posted, Keys: "exit\n"},
		}})
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 40))
	}
	t.Logf("%q after %s", res.MarkerLine, res.Elapsed.Round(100*time.Millisecond))
}
