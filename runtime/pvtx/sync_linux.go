//go:build linux

package pvtx

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncTree flushes the file system holding dir (syncfs(2)), so the files
// of a deployed tree are on disk before it is swapped in: a power cut
// right after the swap must not leave empty files in the revision.
func syncTree(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
