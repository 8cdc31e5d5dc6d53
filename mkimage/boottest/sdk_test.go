package boottest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/pvrclient"
	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/container"
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
//
// The same boot checks the debug ssh server on 8222 with the real OpenSSH
// client, also through a hostfwd: the test's key is installed as a user
// would, as the user meta pvr-sdk.authorized_keys saved with pvcontrol
// from the debug shell; then `ssh /@` copies the running revision's state
// out of /storage and `ssh pvr-sdk@` reads a file only that container has.
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
	key := newSSHKey(t)
	port, sshPort := freePort(t), freePort(t)
	repo := fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/pvr", port)
	dir := filepath.Join(t.TempDir(), "clone")
	roundTrip := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// ssh first: the post below replaces the running revision.
		if err := checkSSH(ctx, t, key, sshPort); err != nil {
			t.Errorf("debug ssh through the forward: %v", err)
		}
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
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:12369", port), fmt.Sprintf("tcp:127.0.0.1:%d-:8222", sshPort)},
		Marker:  running,
		Expect:  []string{started, "relay-42", "host-posted-42"},
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: started, Keys: "pventer -c pvr-sdk pvcontrol usrmeta save pvr-sdk.authorized_keys '" + key.pub + "'; " +
				"pventer -c pvr-sdk busybox nc -ll -p 12369 -e busybox nc 127.0.0.1 12368 & echo relay-$((6*7))\n"},
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

// sshKey is an OpenSSH client key pair of the test.
type sshKey struct {
	dir, file, pub string
}

// newSSHKey makes an ed25519 key with ssh-keygen; the test needs the real
// OpenSSH client.
func newSSHKey(t *testing.T) sshKey {
	t.Helper()
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not installed (Debian openssh-client)", tool)
		}
	}
	dir := t.TempDir()
	k := sshKey{dir: dir, file: filepath.Join(dir, "id")}
	// no comment: the public key is typed inside single quotes
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", k.file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	b, err := os.ReadFile(k.file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k.pub = strings.TrimSpace(string(b))
	return k
}

// ssh runs one OpenSSH command as user@127.0.0.1 on port and returns its
// standard output: no user config, a private known_hosts, never a prompt.
func (k sshKey) ssh(ctx context.Context, port int, user, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-p", strconv.Itoa(port), "-i", k.file,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile="+filepath.Join(k.dir, "known_hosts"), "-o", "ConnectTimeout=30",
		user+"@127.0.0.1", command)
	cmd.Env = append(os.Environ(), "HOME="+k.dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("ssh %s@ %q: %w: %s", user, command, err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.Bytes(), nil
}

// checkSSH runs one host and one container command over the debug ssh
// forward. The first login is retried until ctx ends: the key was typed on
// the console just before, and the forward's guest side may still be
// coming up.
func checkSSH(ctx context.Context, t *testing.T, k sshKey, port int) error {
	const state = "/storage/trails/0/.pvr/json"
	var out []byte
	var err error
	for {
		if out, err = k.ssh(ctx, port, "/", "cat "+state); err == nil || ctx.Err() != nil {
			break
		}
		t.Logf("retrying: %v", err)
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		return err
	}
	// The running revision 0 is the built one: the same bytes as the
	// build's work tree beside the image, when it is there.
	want, rerr := os.ReadFile(filepath.Join(filepath.Dir(os.Getenv("PV_TEST_IMAGE")), "work", state))
	var st map[string]json.RawMessage
	switch {
	case rerr == nil && !bytes.Equal(out, want):
		return fmt.Errorf("ssh /@ cat %s: %d bytes differ from the build's %d", state, len(out), len(want))
	case json.Unmarshal(out, &st) != nil || st["#spec"] == nil:
		return fmt.Errorf("ssh /@ cat %s = %.200q: not a pvr state", state, out)
	}
	t.Logf("ssh /@ cat %s: %d bytes, %d entries", state, len(out), len(st))
	out, err = k.ssh(ctx, port, container.SDK, "cat /etc/pvr-sdk/config.json")
	if err != nil {
		return err
	}
	if string(out) != container.SDKConfig {
		return fmt.Errorf("ssh %s@ cat /etc/pvr-sdk/config.json = %q, want the container's %q", container.SDK, out, container.SDKConfig)
	}
	t.Logf("ssh %s@ cat /etc/pvr-sdk/config.json: the container's", container.SDK)
	return nil
}
