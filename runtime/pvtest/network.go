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
// template "network", on the host's busybox-static): DHCP on the first
// NIC of its network namespace, the lease's DNS servers written into the
// central /etc/resolv.conf. Only for tests with "netns": "true": in the
// host's namespace it would configure the host's NIC.
const KindNetwork = "network"

// hostBusybox is Debian's busybox-static on the test host.
const hostBusybox = "/bin/busybox"

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
		Busybox: hostBusybox, Work: work, Epoch: 1700000000, Comp: "gzip", Cache: filepath.Join(f.CacheDir, "squashfs")})
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
	return writeExport(f.CacheDir, name, run, nil, objs, nil)
}
