package boottest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/pvrclient"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// TestPvrSDK boots a Pantavisor image whose recipe has the pvr-sdk
// container and makes one pvr clone/post round trip against it from the
// host, through QEMU's user network (hostfwd). pvr-sdk listens on the
// device's loopback only (its default), so the debug shell relays a guest
// port to it with busybox nc, the way an SSH tunnel would; the host then
// clones the device (state and every object) and posts the state back as
// pvr does (real pvr cannot be built here: internal/pvrclient),
// which becomes locals/1 and runs to READY.
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
	port := freePort(t)
	repo := fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/pvr", port)
	dir := filepath.Join(t.TempDir(), "clone")
	roundTrip := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var err error
		// The relay may need a moment to listen: retry the first call.
		for ctx.Err() == nil {
			if _, err = pvrclient.GetRemote(ctx, repo); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err == nil {
			err = pvrclient.Clone(ctx, repo, dir)
		}
		if err == nil {
			var res pvrclient.Result
			res, err = pvrclient.Post(ctx, repo, dir, "image test", 1)
			t.Logf("post answer: %s", res.Raw)
		}
		if err != nil {
			t.Errorf("clone/post through the forward: %v", err)
			return "echo host-failed\n"
		}
		return "echo host-posted-$((6*7))\n"
	}
	const (
		started = "platform=pvr-sdk status=STARTED"
		running = "rev=locals/1 status=READY"
	)
	res, err := Boot(context.Background(), Options{Image: img, Firmware: BIOS, Timeout: timeout,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:12369", port)},
		Marker:  running,
		Expect:  []string{started, "relay-42", "host-posted-42"},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: started, Keys: "pventer -c pvr-sdk busybox nc -ll -p 12369 -e busybox nc 127.0.0.1 12368 & echo relay-$((6*7))\n"},
			{After: "relay-42", Do: roundTrip},
			{After: "host-posted-42", Keys: "exit\n"},
		}})
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 40))
	}
	t.Logf("%q after %s", res.MarkerLine, res.Elapsed.Round(100*time.Millisecond))
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
