package builder

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pantavisor/pantavisor-go/internal/pvrclient"
	"github.com/pantavisor/pantavisor-go/mkimage/container"
)

// mergeCloneDir is where a PVR_MERGE_SRC clone URL is cloned, under the
// work directory. It survives from one build to the next (keptWork):
// objects already there are checked against their names and not fetched
// again.
const mergeCloneDir = "merge-clone"

var bareIP = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)

// mergeRemote returns the pvr remote PVR_MERGE_SRC names, or "" when it
// names a local checkout or export: a URL (a device's
// http://<ip>:12368/cgi-bin/pvr, a Hub trail) or pvr's bare-IP shorthand
// for a device. A local path of that name wins.
func mergeRemote(src string) string {
	if src == "" {
		return ""
	}
	if _, err := os.Stat(src); err == nil {
		return ""
	}
	if container.IsRemote(src) || bareIP.MatchString(src) {
		return src
	}
	return ""
}

// cloneMergeSrc clones the pvr remote src into the work directory with
// pvr's remote protocol (state, then every object, each checked against
// its sha256) and returns the clone, a directory LoadSource reads like an
// unpacked pvr export. A remote that cannot be reached, or an offline
// build, is ErrRemoteSource with the cause first.
func (b *run) cloneMergeSrc(ctx context.Context, src string) (string, error) {
	if b.o.Offline {
		return "", fmt.Errorf("pvr source %s: the build is offline (PV_OFFLINE=1): %w", src, container.ErrRemoteSource)
	}
	repo := pvrclient.FixupRepoRef(src)
	if u, err := url.Parse(repo); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("pvr source %s: not a pvr remote (want http(s)://…, a device's <ip> or a checkout): %w", src, container.ErrRemoteSource)
	}
	// cleanWork removed the previous clone's json, not its objects
	dir := filepath.Join(b.work, mergeCloneDir)
	if err := pvrclient.Clone(ctx, repo, dir); err != nil {
		return "", fmt.Errorf("pvr source %s: clone: %v: %w", src, err, container.ErrRemoteSource)
	}
	n := 0
	if ents, err := os.ReadDir(filepath.Join(dir, "objects")); err == nil {
		n = len(ents)
	}
	b.note("PVR_MERGE_SRC: cloned %s (%d objects) into %s", strings.TrimSuffix(repo, "/"), n, dir)
	return dir, nil
}
