// Package trail writes the factory revision of a Pantavisor storage tree:
// objects/<sha256>, the state JSON and trails/<rev>/ with hard links into
// objects/ and the .pv/ boot links, through runtime/storage's Materialize
// (the code the device runs), plus a pvr export of the BSP
// (<target>.pvr.tgz) for updates.
//
//	rev := trail.Revision{}
//	rev.AddObject("bsp/kernel.img", "out/vmlinuz")
//	rev.AddJSON("bsp/run.json", runJSON)
//	st, err := trail.Write(log, storageRoot, "0", rev)
//	err = trail.Export(w, storageRoot, st, "bsp/", epoch)
package trail

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/pantavisor/pantavisor-go/runtime/signature"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// Revision is the content of one revision before it is written.
type Revision struct {
	objects map[string]string          // key → host file
	inline  map[string]json.RawMessage // key → JSON value
	signer  Signer
}

// Signer signs a composed state: it returns signatures to add to it by
// state key (_sigs/<name>.json). Signatures do not sign each other, so
// adding them leaves every signature valid.
type Signer func(st *state.State) (map[string]json.RawMessage, error)

// Sign makes Write pass the composed state to s and add the signatures it
// returns before the revision is written; a returned signature replaces
// one of the same key (a reference device's _sigs/bsp.json, which signs
// a BSP the image replaces).
func (r *Revision) Sign(s Signer) { r.signer = s }

// AddObject adds key as an object read from the host file src.
func (r *Revision) AddObject(key, src string) error {
	if err := state.ValidKey(key); err != nil {
		return fmt.Errorf("trail: key %q: %w", key, err)
	}
	if r.objects == nil {
		r.objects = map[string]string{}
	}
	r.objects[key] = src
	return nil
}

// AddJSON adds key as an inline JSON value.
func (r *Revision) AddJSON(key string, v any) error {
	if err := state.ValidKey(key); err != nil {
		return fmt.Errorf("trail: key %q: %w", key, err)
	}
	raw, ok := v.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("trail: key %q: %w", key, err)
		}
		raw = b
	}
	if r.inline == nil {
		r.inline = map[string]json.RawMessage{}
	}
	r.inline[key] = raw
	return nil
}

// AddTree adds every regular file below dir with its relative path as
// key: "*.json" files holding valid JSON inline, everything else as
// objects (pvr's rule).
func (r *Revision) AddTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("trail: %s: only regular files can be state entries", p)
		}
		rel, _ := filepath.Rel(dir, p)
		key := filepath.ToSlash(rel)
		if strings.HasSuffix(key, ".json") {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if json.Valid(data) {
				return r.AddJSON(key, json.RawMessage(data))
			}
		}
		return r.AddObject(key, p)
	})
}

// FileSHA returns the sha256 (hex) of the file at path: its object name.
func FileSHA(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Write stores the revision's objects in the storage at root and
// materializes trails/<rev>. It returns the parsed state.
func Write(log *slog.Logger, root, rev string, r Revision) (*state.State, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := storage.Open(root)
	if err != nil {
		return nil, fmt.Errorf("trail: %w", err)
	}
	s.ReservedPercent = 0 // the build host's free space is not the device's
	doc := map[string]json.RawMessage{"#spec": json.RawMessage(`"` + state.Spec + `"`)}
	keys := make([]string, 0, len(r.objects))
	for k := range r.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		src := r.objects[k]
		sha, err := FileSHA(src)
		if err != nil {
			return nil, fmt.Errorf("trail: %s: %w", k, err)
		}
		if !s.HasObject(sha) {
			f, err := os.Open(src)
			if err != nil {
				return nil, fmt.Errorf("trail: %s: %w", k, err)
			}
			_, err = s.PutObject(sha, f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("trail: %s: %w", k, err)
			}
		}
		doc[k] = json.RawMessage(`"` + sha + `"`)
	}
	for k, v := range r.inline {
		if _, dup := doc[k]; dup {
			return nil, fmt.Errorf("trail: key %q is both an object and inline", k)
		}
		doc[k] = v
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("trail: %w", err)
	}
	st, err := state.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("trail: state of revision %s: %w", rev, err)
	}
	if r.signer != nil {
		if st, err = addSignatures(st, doc, r.signer); err != nil {
			return nil, fmt.Errorf("trail: revision %s: %w", rev, err)
		}
	}
	if err := s.Materialize(rev, st); err != nil {
		return nil, fmt.Errorf("trail: %w", err)
	}
	// The device sees the storage at /storage, not at the build path:
	// point pvr at the objects relatively, like pvr checkouts do.
	cfg := filepath.Join(s.TrailDir(rev), ".pvr", "config")
	if err := os.WriteFile(cfg, []byte(`{"ObjectsDir":"../../objects"}`), 0o644); err != nil {
		return nil, fmt.Errorf("trail: %w", err)
	}
	log.Info("revision written", "rev", rev, "objects", len(st.Objects()), "keys", len(st.Keys()))
	return st, nil
}

// addSignatures adds sign's signatures of st to doc and returns the state
// of the result.
func addSignatures(st *state.State, doc map[string]json.RawMessage, sign Signer) (*state.State, error) {
	sigs, err := sign(st)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return st, nil
	}
	for k, v := range sigs {
		if !strings.HasPrefix(k, sigsPrefix) {
			return nil, fmt.Errorf("signature %s: not under %s", k, sigsPrefix)
		}
		doc[k] = v // replaces a merged signature of the same name
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return state.Parse(raw)
}

// sigsPrefix is the state directory of signatures.
const sigsPrefix = signature.SigsPrefix

func matchAny(globs []string, key string) bool {
	for _, g := range globs {
		if signature.Match(g, key) {
			return true
		}
	}
	return false
}

// Export writes a pvr export (tar.gz holding "json" and objects/<sha>) of
// the state keys starting with prefix (plus "#spec"), reproducibly. A
// part prefix "<part>/" also takes the part's signature
// _sigs/<part>.json and the keys outside the prefix it signs (the BSP's
// device.json), so the export verifies on its own and replaces the
// device's signature of the part when deployed.
func Export(w io.Writer, root string, st *state.State, prefix string, epoch int64) error {
	var sub = map[string]json.RawMessage{"#spec": json.RawMessage(`"` + state.Spec + `"`)}
	var shas []string
	seen := map[string]bool{}
	var sigInclude []string
	sigKey := signature.SigKey(strings.TrimSuffix(prefix, "/"))
	if sig := st.Signatures()[sigKey]; prefix != "" && sig != nil {
		sigInclude = sig.Header.Include
	}
	for _, k := range st.Keys() {
		if !strings.HasPrefix(k, prefix) && !(sigInclude != nil && (k == sigKey || matchAny(sigInclude, k))) {
			continue
		}
		v, _ := st.Raw(k)
		sub[k] = v
		if sha, ok := st.Object(k); ok && !seen[sha] {
			seen[sha] = true
			shas = append(shas, sha)
		}
	}
	sort.Strings(shas)
	raw, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	canon, err := state.Canonical(raw)
	if err != nil {
		return fmt.Errorf("trail: export: %w", err)
	}
	gw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression) // the objects are mostly compressed squashfs
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gw)
	mtime := time.Unix(epoch, 0)
	hdr := func(name string, mode int64, size int64, typ byte) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Size: size, Typeflag: typ, ModTime: mtime, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
	}
	if err := tw.WriteHeader(hdr("json", 0o644, int64(len(canon)), tar.TypeReg)); err != nil {
		return err
	}
	if _, err := tw.Write(canon); err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr("objects/", 0o755, 0, tar.TypeDir)); err != nil {
		return err
	}
	for _, sha := range shas {
		p := filepath.Join(root, "objects", sha)
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("trail: export: %w", err)
		}
		fi, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(hdr("objects/"+sha, 0o644, fi.Size(), tar.TypeReg))
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("trail: export %s: %w", sha, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gw.Close()
}
