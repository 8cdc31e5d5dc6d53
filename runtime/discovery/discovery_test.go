package discovery

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// helperEnv makes the test binary a helper process: "announce" or
// "browse" (run inside the test's network namespaces).
const helperEnv = "PV_DISCOVERY_HELPER"

// found is what the browser saw, as pvr's scan reads it.
type found struct {
	Instance string
	Port     int
	Text     []string
	IPv4     []string
}

// TestHelper is not a test: it is the announcer or the browser process.
func TestHelper(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "announce":
		// announce until stdin closes; the info comes from hint files
		dir := os.Getenv("PV_DISCOVERY_DIR")
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		if err := Announce(ctx, Options{Info: func() Info { return ReadInfo(dir) }, Every: 100 * time.Millisecond, Log: log}); err != nil {
			t.Fatal(err)
		}
	case "browse":
		// browse as pvr does (grandcat/zeroconf, _ssh._tcp in local.)
		// until a service with the wanted TXT string shows up
		want := os.Getenv("PV_DISCOVERY_WANT")
		r, err := zeroconf.NewResolver(nil)
		if err != nil {
			t.Fatal(err)
		}
		entries := make(chan *zeroconf.ServiceEntry)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := r.Browse(ctx, Service, Domain, entries); err != nil {
			t.Fatal(err)
		}
		for e := range entries {
			fmt.Fprintf(os.Stderr, "browse: %s port %d text %q\n", e.Instance, e.Port, e.Text)
			if !slices.Contains(e.Text, want) {
				continue
			}
			f := found{Instance: e.Instance, Port: e.Port, Text: e.Text}
			for _, ip := range e.AddrIPv4 {
				f.IPv4 = append(f.IPv4, ip.String())
			}
			json.NewEncoder(os.Stdout).Encode(f)
			return
		}
		t.Fatalf("no service with %q", want)
	default:
		t.Skip("helper process only")
	}
}

// netns is a network namespace of the test, deleted at cleanup.
func netns(t *testing.T, name string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		testenv.Skipf(t, "ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestAnnounce: a device namespace and a laptop namespace joined by a veth
// pair; the laptop browses like `pvr device scan` and finds the device's
// id, claim challenge, hub, ports and address; after the claim the
// challenge is gone.
func TestAnnounce(t *testing.T) {
	testenv.NeedRoot(t, "network namespaces")
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Skipf(t, "ip not installed (Debian iproute2)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	dev, laptop := "pvdisc-d-"+id, "pvdisc-l-"+id
	netns(t, dev)
	netns(t, laptop)
	ip(t, "link", "add", "vd"+id, "netns", dev, "type", "veth", "peer", "name", "vl"+id, "netns", laptop)
	ip(t, "-n", dev, "addr", "add", "10.231.7.1/24", "dev", "vd"+id)
	ip(t, "-n", laptop, "addr", "add", "10.231.7.2/24", "dev", "vl"+id)
	for _, ns := range [][2]string{{dev, "vd" + id}, {laptop, "vl" + id}} {
		ip(t, "-n", ns[0], "link", "set", "lo", "up")
		ip(t, "-n", ns[0], "link", "set", ns[1], "up")
	}

	hints := t.TempDir()
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(hints, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("device-id", "63593333a2ebef000a2fd62e\n")
	write("challenge", "plainly-dynamic-wombat\n")
	write("pantahub-host", "api.pantahub.com:443\n")

	ann := exec.Command("ip", "netns", "exec", dev, os.Args[0], "-test.run=^TestHelper$")
	ann.Env = append(os.Environ(), helperEnv+"=announce", "PV_DISCOVERY_DIR="+hints)
	stdin, err := ann.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs, err := ann.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	updated := make(chan struct{}, 16)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			t.Log(sc.Text())
			if strings.Contains(sc.Text(), "claimed=1") {
				updated <- struct{}{}
			}
		}
	}()
	if err := ann.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := ann.Wait(); err != nil {
			t.Errorf("announcer: %v", err) // e.g. a race report
		}
	}()

	browse := func(want string) found {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", laptop, os.Args[0], "-test.run=^TestHelper$")
		cmd.Env = append(os.Environ(), helperEnv+"=browse", "PV_DISCOVERY_WANT="+want)
		cmd.Stderr = tw{t}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("browse for %q: %v", want, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			var f found
			if json.Unmarshal(sc.Bytes(), &f) == nil && f.Instance != "" {
				return f
			}
		}
		t.Fatalf("browse for %q: no answer in %q", want, out)
		return found{}
	}
	f := browse("device-id=63593333a2ebef000a2fd62e")
	for _, want := range []string{"challenge=plainly-dynamic-wombat", "pantahub=https://api.pantahub.com:443", "claimed=0", "pvr-port=12368", "ssh-port=8222"} {
		if !slices.Contains(f.Text, want) {
			t.Errorf("TXT = %q, want %q in it", f.Text, want)
		}
	}
	if f.Port != SSHPort || !slices.Contains(f.IPv4, "10.231.7.1") {
		t.Errorf("service port %d, IPv4 %v; want %d and 10.231.7.1", f.Port, f.IPv4, SSHPort)
	}

	// claimed: the challenge is gone, the TXT record follows (a browser
	// reports each instance once, so it starts after the update)
	write("challenge", "")
	select {
	case <-updated:
	case <-time.After(60 * time.Second):
		t.Fatal("the announcer did not update its TXT record")
	}
	f = browse("claimed=1")
	if slices.ContainsFunc(f.Text, func(s string) bool { return strings.HasPrefix(s, "challenge=") }) {
		t.Errorf("TXT after the claim = %q, want no challenge", f.Text)
	}
}

func TestText(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{DeviceID: "abc", Challenge: "word", Pantahub: "https://h:443"}, "device-id=abc challenge=word pantahub=https://h:443 claimed=0 pvr-port=12368 ssh-port=8222"},
		{Info{DeviceID: "abc", Challenge: "stale", Claimed: true, SSHPort: 22}, "device-id=abc claimed=1 pvr-port=12368 ssh-port=22"},
		{Info{DeviceID: "a b\x00c\n"}, "device-id=abc claimed=0 pvr-port=12368 ssh-port=8222"},
		{Info{}, "device-id=" + clean(host) + " claimed=0 pvr-port=12368 ssh-port=8222"},
	} {
		if got := strings.Join(tc.in.Text(), " "); got != tc.want {
			t.Errorf("%+v.Text() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadInfo(t *testing.T) {
	dir := t.TempDir()
	if got := ReadInfo(dir); got != (Info{}) {
		t.Errorf("ReadInfo(empty dir) = %+v, want zero", got)
	}
	os.WriteFile(filepath.Join(dir, "device-id"), []byte("id1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pantahub-host"), []byte("https://hub:1\n"), 0o644)
	want := Info{DeviceID: "id1", Pantahub: "https://hub:1", Claimed: true}
	if got := ReadInfo(dir); got != want {
		t.Errorf("ReadInfo = %+v, want %+v", got, want)
	}
	os.WriteFile(filepath.Join(dir, "challenge"), []byte(strings.Repeat("x", 2000)), 0o644)
	if got := ReadInfo(dir); got.Challenge != "" || !got.Claimed {
		t.Errorf("ReadInfo(huge challenge) = %+v, want it ignored", got)
	}
}

type tw struct{ t *testing.T }

func (w tw) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
