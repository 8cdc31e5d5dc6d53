package app

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/pantavisor/pantavisor-go/mkimage/trail"
)

// Export writes apps of a checkout as a pvr export tarball (gzip; json
// plus objects/<sha256>), the package `pvtx add` and PVR_MERGE_SRC take.
func Export(dir string, names []string, w io.Writer) error {
	doc := map[string]any{"#spec": "pantavisor-service-system@1"}
	objs := map[string]string{} // sha -> file
	for _, n := range names {
		e, err := Entries(dir, n)
		if err != nil {
			return err
		}
		for k, v := range e.Inline {
			doc[k] = v
		}
		for k, p := range e.Objects {
			sha, err := trail.FileSHA(p)
			if err != nil {
				return fmt.Errorf("export %s: %w", k, err)
			}
			doc[k] = sha
			objs[sha] = p
		}
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "json", Mode: 0o644, Size: int64(len(js)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(js); err != nil {
		return err
	}
	shas := make([]string, 0, len(objs))
	for s := range objs {
		shas = append(shas, s)
	}
	sort.Strings(shas)
	for _, s := range shas {
		if err := addFile(tw, "objects/"+s, objs[s]); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addFile(tw *tar.Writer, name, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
