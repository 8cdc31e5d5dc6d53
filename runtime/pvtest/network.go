package pvtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/container"
)

// KindNetwork is the images' default network container (mkimage/container
// template "network", on the host's busybox-static and toybox): DHCP on
// the first NIC of its network namespace, the lease's DNS servers written
// into the central /etc/resolv.conf, time from the lease's NTP servers
// with toybox's sntp. Only for tests with "netns": "true": in the host's
// namespace it would configure the host's NIC. Unlike the images' it
// cannot set the clock (CAP_SYS_TIME dropped): the host's is not the
// test's to change, so sntp reports EPERM once it has the server's
// answer.
const KindNetwork = "network"

// hostBusybox is Debian's busybox-static on the test host; the host's
// root is the target root of Debian's toybox (its sntp) and libraries.
const (
	hostBusybox = "/bin/busybox"
	hostRoot    = "/"
)

func init() { kinds[KindNetwork] = true }

// buildNetwork builds the container as the image builder does and exports
// it as a pvr export tarball (cached by content by writeExport).
func (f *Fixtures) buildNetwork(spec, name string) (string, error) {
	work, err := os.MkdirTemp(f.CacheDir, "network-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	e, err := container.Build(context.Background(), container.Spec{Name: name, Template: container.Network,
		Busybox: hostBusybox, NTPRoot: hostRoot, Work: work, Epoch: 1700000000, Comp: "gzip", Cache: filepath.Join(f.CacheDir, "squashfs")})
	if err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	var run map[string]any
	if err := json.Unmarshal(e.Inline[name+"/run.json"], &run); err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	objs := map[string]string{}
	for k, p := range e.Objects {
		objs[strings.TrimPrefix(k, name+"/")] = p
	}
	conf, err := os.ReadFile(objs["lxc.container.conf"])
	if err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	objs["lxc.container.conf"] = filepath.Join(work, "lxc.container.conf")
	if err := os.WriteFile(objs["lxc.container.conf"], []byte(strings.TrimRight(string(conf), "\n")+"\nlxc.cap.drop = sys_time\n"), 0o644); err != nil {
		return "", err
	}
	return writeExport(f.CacheDir, name, run, nil, objs, nil)
}
