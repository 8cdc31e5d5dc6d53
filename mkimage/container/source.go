package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// ErrRemoteSource reports a clone URL this package cannot read: the
// builder clones one first, when it can reach it.
var ErrRemoteSource = errors.New("a remote pvr source needs a reachable device or Hub (the build clones it; offline: pvr clone the device, then give its checkout's .pvr directory)")

// maxStateJSON bounds the json of a source.
const maxStateJSON = 64 << 20

// LoadSource reads the state of a reference device and returns its
// entries except bsp/ (the image brings its own BSP): a pvr checkout
// (the checkout directory or its .pvr directory: "json" plus the objects
// of .pvr/config's ObjectsDir, else .pvr/objects) or a pvr export tarball
// (json + objects/<sha>, optionally gzipped). Tarball objects are
// extracted into work. Every object is checked against its sha256.
func LoadSource(src, work string) (Entries, error) {
	return loadSource(src, work, func(k string) bool { return !isBSP(k) })
}

// LoadSourceBSP reads the BSP of a reference device (PVR_USE_SRC_BSP):
// its bsp/ entries, checked as LoadSource checks the others.
func LoadSourceBSP(src, work string) (Entries, error) {
	return loadSource(src, work, func(k string) bool { return isBSP(k) && strings.HasPrefix(k, "bsp/") })
}

func isBSP(k string) bool { return state.Owner(k) == "bsp" || strings.HasPrefix(k, "bsp/") }

func loadSource(src, work string, keep func(key string) bool) (Entries, error) {
	e := NewEntries()
	if err := CheckSource(src); err != nil {
		return e, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return e, fmt.Errorf("pvr source: %w", err)
	}
	var raw []byte
	var objDir string
	if fi.IsDir() {
		pvr := src
		if _, err := os.Stat(filepath.Join(src, ".pvr", "json")); err == nil {
			pvr = filepath.Join(src, ".pvr")
		}
		raw, err = os.ReadFile(filepath.Join(pvr, "json"))
		if err != nil {
			return e, fmt.Errorf("pvr source %s: %w", src, err)
		}
		objDir, err = objectsDir(pvr)
		if err != nil {
			return e, fmt.Errorf("pvr source %s: %w", src, err)
		}
	} else {
		objDir = filepath.Join(work, "objects")
		raw, err = extract(src, objDir)
		if err != nil {
			return e, fmt.Errorf("pvr source %s: %w", src, err)
		}
	}
	st, err := state.Parse(raw)
	if err != nil {
		return e, fmt.Errorf("pvr source %s: json: %w", src, err)
	}
	for _, k := range st.Keys() {
		if !keep(k) {
			continue
		}
		if sha, ok := st.Object(k); ok {
			p := filepath.Join(objDir, sha)
			if err := verify(p, sha); err != nil {
				return e, fmt.Errorf("pvr source %s: %s: %w", src, k, err)
			}
			e.Objects[k] = p
			continue
		}
		v, _ := st.Raw(k)
		e.Inline[k] = v
	}
	return e, nil
}

// IsRemote tells whether src is a clone URL rather than a local path.
func IsRemote(src string) bool {
	return strings.Contains(src, "://") || strings.HasPrefix(src, "git@")
}

// CheckSource fails early for sources LoadSource cannot read: clone URLs
// (ErrRemoteSource) and missing paths.
func CheckSource(src string) error {
	if IsRemote(src) {
		return fmt.Errorf("pvr source %s: %w", src, ErrRemoteSource)
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("pvr source: %w", err)
	}
	return nil
}

// objectsDir resolves a checkout's objects directory.
func objectsDir(pvr string) (string, error) {
	data, err := os.ReadFile(filepath.Join(pvr, "config"))
	if err == nil {
		var c struct{ ObjectsDir string }
		if err := json.Unmarshal(data, &c); err != nil {
			return "", fmt.Errorf(".pvr/config: %w", err)
		}
		if c.ObjectsDir != "" {
			d := c.ObjectsDir
			if !filepath.IsAbs(d) {
				// relative to the checkout (the parent of .pvr), as in
				// Pantavisor's own trails
				d = filepath.Join(filepath.Dir(pvr), d)
			}
			return d, nil
		}
	} else if !os.IsNotExist(err) {
		return "", err
	}
	return filepath.Join(pvr, "objects"), nil
}

func verify(path, sha string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("object %s: %w", sha, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("object %s: content has sha256 %s", sha, got)
	}
	return nil
}

// extract reads a pvr export: it returns "json" and writes objects/<sha>
// into objDir.
func extract(path, objDir string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		r = zr
	}
	if err := os.MkdirAll(objDir, 0o755); err != nil {
		return nil, err
	}
	tr := tar.NewReader(r)
	var raw []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("export tarball: %w", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case h.Typeflag != tar.TypeReg:
			continue
		case name == "json":
			raw, err = io.ReadAll(io.LimitReader(tr, maxStateJSON+1))
			if err != nil {
				return nil, err
			}
			if len(raw) > maxStateJSON {
				return nil, fmt.Errorf("export tarball: json larger than %d bytes", maxStateJSON)
			}
		case strings.HasPrefix(name, "objects/"):
			sha := strings.TrimPrefix(name, "objects/")
			if !state.IsSha(sha) {
				return nil, fmt.Errorf("export tarball: %s: not objects/<sha256>", h.Name)
			}
			out, err := os.Create(filepath.Join(objDir, sha))
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if raw == nil {
		return nil, errors.New("export tarball: no json")
	}
	return raw, nil
}
