package appengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/pvtx"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// Markers on storage that make Prepare idempotent.
const (
	createdMarker = ".created"
	deployMarker  = ".pvtx-done"
)

// Setup describes a fresh App Engine storage.
type Setup struct {
	Storage    string   // PV_STORAGE_MNTPOINT
	Skel       string   // <prefix>/lib/pantavisor/skel, copied on first run
	Packages   []string // dirs of pvr export tarballs/JSONs: pvtx.d, pvtx.extra.d
	InitialRev string   // revision to deploy them as ("" = "0")

	// SSHPubKey (PV_DEBUG_SSH_PUBKEY), when set, is written on every run
	// to SSHKeysFile (<etc>/pantavisor/ssh/<PV_DEBUG_SSH_AUTHORIZED_KEYS,
	// default pvtest-authorized_keys>), so a tester can log in to the
	// debug shell.
	SSHPubKey   string
	SSHKeysFile string
}

// Prepare lays down the storage the first time the engine runs: the skel,
// the initial revision deployed from the packages, and a uboot.txt that
// boots it. Each step is skipped once its marker exists, so a half-done
// first run is finished by the next.
func Prepare(ctx context.Context, s Setup) error {
	rev := s.InitialRev
	if rev == "" {
		rev = "0"
	}
	if err := storage.ValidRevision(rev); err != nil {
		return fmt.Errorf("initial revision: %w", err)
	}
	if err := os.MkdirAll(s.Storage, 0o755); err != nil {
		return err
	}
	if s.SSHPubKey != "" && s.SSHKeysFile != "" {
		if err := writeAuthorizedKeys(s.SSHKeysFile, s.SSHPubKey); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(s.Storage, createdMarker)) {
		if s.Skel != "" && exists(s.Skel) {
			if err := copyTree(s.Skel, s.Storage); err != nil {
				return fmt.Errorf("copy skel: %w", err)
			}
		}
		if err := touch(filepath.Join(s.Storage, createdMarker)); err != nil {
			return err
		}
	}
	st, err := storage.Open(s.Storage)
	if err != nil {
		return err
	}
	if !exists(filepath.Join(s.Storage, deployMarker)) {
		if err := deployInitial(ctx, st, s.Packages, rev); err != nil {
			return fmt.Errorf("deploy initial revision %s: %w", rev, err)
		}
		if err := touch(filepath.Join(s.Storage, deployMarker)); err != nil {
			return err
		}
	}
	uboot := filepath.Join(s.Storage, "boot", "uboot.txt")
	if !exists(uboot) {
		if err := os.MkdirAll(filepath.Dir(uboot), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(uboot, []byte("pv_rev="+rev+"\x00\x00"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// deployInitial is "pvtx begin empty; pvtx add <each package>; pvtx deploy".
func deployInitial(ctx context.Context, st *storage.Storage, dirs []string, rev string) error {
	txdir, err := os.MkdirTemp("", "pvtx-appengine-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(txdir)
	tx, err := pvtx.Open(pvtx.Options{Dir: txdir})
	if err != nil {
		return err
	}
	if err := tx.Begin(ctx, "empty", filepath.Join(st.Root(), "objects")); err != nil {
		return err
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if err := addFile(ctx, tx, filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	if err := tx.Deploy(st.TrailDir(rev)); err != nil {
		return err
	}
	if rev == "0" {
		return nil // the daemon commits the factory revision itself
	}
	if err := st.WriteProgress(rev, progress.New(progress.Done, progress.MsgDone)); err != nil {
		return err
	}
	return st.SetDone(rev)
}

func addFile(ctx context.Context, tx *pvtx.Tx, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tx.Add(ctx, f); err != nil {
		return fmt.Errorf("add %s: %w", path, err)
	}
	return nil
}

// writeAuthorizedKeys replaces path with key (newline-terminated), 0600 in
// a 0700 directory, as sshd insists on.
func writeAuthorizedKeys(path, key string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("ssh authorized keys: %w", err)
	}
	if !strings.HasSuffix(key, "\n") {
		key += "\n"
	}
	if err := atomicfile.Write(path, []byte(key), 0o600); err != nil {
		return fmt.Errorf("ssh authorized keys: %w", err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// copyTree copies regular files, dirs and symlinks of src into dst,
// keeping modes; existing files are replaced.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			os.Remove(to)
			return os.Symlink(target, to)
		case d.Type().IsRegular():
			return copyFile(path, to, info.Mode().Perm())
		}
		return nil // devices, sockets: not part of a skel
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
