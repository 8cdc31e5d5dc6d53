package trail

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func TestWriteAndExport(t *testing.T) {
	src := t.TempDir()
	for name, data := range map[string]string{"kernel": "K", "initrd": "I", "addon": "A"} {
		os.WriteFile(filepath.Join(src, name), []byte(data), 0o644)
	}
	skel := filepath.Join(src, "skel")
	os.MkdirAll(filepath.Join(skel, "_config"), 0o755)
	os.WriteFile(filepath.Join(skel, "device.json"), []byte(`{}`), 0o644)
	var rev Revision
	for _, err := range []error{
		rev.AddObject("bsp/kernel.img", filepath.Join(src, "kernel")),
		rev.AddObject("bsp/pantavisor", filepath.Join(src, "initrd")),
		rev.AddObject("bsp/debug.cpio.xz4", filepath.Join(src, "addon")),
		rev.AddJSON("bsp/run.json", map[string]any{"linux": "kernel.img", "initrd": "pantavisor", "addons": []string{"debug.cpio.xz4"}}),
		rev.AddTree(skel),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rev.AddObject("../x", "y"); err == nil {
		t.Errorf("AddObject(../x) = nil error")
	}
	root := filepath.Join(t.TempDir(), "storage")
	st, err := Write(nil, root, "0", rev)
	if err != nil {
		t.Fatal(err)
	}
	trail := filepath.Join(root, "trails/0")
	for link, obj := range map[string]string{".pv/pv-kernel.img": "bsp/kernel.img", ".pv/pv-initrd.img": "bsp/pantavisor", ".pv/pv-initrd.img.0": "bsp/debug.cpio.xz4"} {
		sha, _ := st.Object(obj)
		a, err1 := os.Stat(filepath.Join(trail, link))
		b, err2 := os.Stat(filepath.Join(root, "objects", sha))
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			t.Errorf("%s is not a hard link of objects/%s: %v %v", link, sha, err1, err2)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(trail, ".pvr/config"))
	if string(cfg) != `{"ObjectsDir":"../../objects"}` {
		t.Errorf(".pvr/config = %s", cfg)
	}
	var exp [2]bytes.Buffer
	for i := range exp {
		if err := Export(&exp[i], root, st, "bsp/", 1700000000); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(exp[0].Bytes(), exp[1].Bytes()) {
		t.Errorf("Export is not reproducible")
	}
	gr, err := gzip.NewReader(&exp[0])
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gr)
	var names []string
	var doc map[string]json.RawMessage
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "json" {
			b, _ := io.ReadAll(tr)
			json.Unmarshal(b, &doc)
		}
	}
	if len(names) != 5 || doc["device.json"] != nil || doc["bsp/run.json"] == nil {
		t.Errorf("export entries = %v, json keys = %d (device.json must not be in a bsp export)", names, len(doc))
	}
}
