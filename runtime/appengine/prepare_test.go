package appengine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/progress"
	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// export writes a pvr export tarball holding one container with one object.
func export(t *testing.T, path, name, content string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	json := `{"#spec":"pantavisor-service-system@1","` + name + `/run.json":{"name":"` + name +
		`","type":"lxc","root-volume":"root.squashfs","config":"lxc.container.conf"},"` +
		name + `/root.squashfs":"` + sha + `","` + name + `/lxc.container.conf":"` + sha + `"}`
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range []struct{ name, body string }{{"json", json}, {"objects/" + sha, content}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(m.body))
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return sha
}

func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	pkgs := filepath.Join(dir, "pvtx.d")
	skel := filepath.Join(dir, "skel")
	os.MkdirAll(pkgs, 0o755)
	os.MkdirAll(filepath.Join(skel, "config"), 0o755)
	os.WriteFile(filepath.Join(skel, "config", "pantahub.config"), []byte("creds.host=localhost\n"), 0o644)
	sha := export(t, filepath.Join(pkgs, "app.tgz"), "app", "rootfs bytes")
	root := filepath.Join(dir, "storage")

	s := Setup{Storage: root, Skel: skel, Packages: []string{pkgs, filepath.Join(dir, "missing")}}
	if err := Prepare(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "config", "pantahub.config")); string(b) != "creds.host=localhost\n" {
		t.Errorf("skel not copied: %q", b)
	}
	st, _ := storage.Open(root)
	j, err := st.StateJSON("0")
	if err != nil || !strings.Contains(string(j), `"app/root.squashfs":"`+sha+`"`) {
		t.Fatalf("trails/0 state = %s, %v", j, err)
	}
	a, err1 := os.Stat(filepath.Join(root, "trails", "0", "app", "root.squashfs"))
	b, err2 := os.Stat(st.ObjectPath(sha))
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		t.Errorf("app/root.squashfs is not a hard link of its object: %v %v", err1, err2)
	}
	if env, _ := os.ReadFile(filepath.Join(root, "boot", "uboot.txt")); string(env) != "pv_rev=0\x00\x00" {
		t.Errorf("uboot.txt = %q", env)
	}

	// a second run changes nothing (the markers hold)
	os.WriteFile(filepath.Join(root, "boot", "uboot.txt"), []byte("pv_rev=5\x00\x00"), 0o644)
	os.Remove(filepath.Join(pkgs, "app.tgz"))
	if err := Prepare(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if env, _ := os.ReadFile(filepath.Join(root, "boot", "uboot.txt")); string(env) != "pv_rev=5\x00\x00" {
		t.Errorf("second Prepare rewrote uboot.txt: %q", env)
	}
}

func TestPrepareNamedRevision(t *testing.T) {
	dir := t.TempDir()
	export(t, filepath.Join(dir, "a.tgz"), "a", "x")
	root := filepath.Join(dir, "storage")
	if err := Prepare(context.Background(), Setup{Storage: root, Packages: []string{dir}, InitialRev: "locals/initial"}); err != nil {
		t.Fatal(err)
	}
	st, _ := storage.Open(root)
	p, err := st.Progress("locals/initial")
	if err != nil || p.Status != progress.Done || !st.IsDone("locals/initial") {
		t.Errorf("named initial revision: progress %+v, %v, done %v", p, err, st.IsDone("locals/initial"))
	}
	if env, _ := os.ReadFile(filepath.Join(root, "boot", "uboot.txt")); string(env) != "pv_rev=locals/initial\x00\x00" {
		t.Errorf("uboot.txt = %q", env)
	}
	if err := Prepare(context.Background(), Setup{Storage: t.TempDir(), InitialRev: "../x"}); err == nil {
		t.Error("Prepare with a bad revision name succeeded")
	}
}

func TestPrepareBadPackage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.tgz"), []byte("not a tarball"), 0o644)
	root := filepath.Join(dir, "storage")
	if err := Prepare(context.Background(), Setup{Storage: root, Packages: []string{dir}}); err == nil {
		t.Fatal("Prepare with a broken package succeeded")
	}
	if exists(filepath.Join(root, deployMarker)) {
		t.Error("deploy marker written after a failed deploy")
	}
}

func TestPrepareSSHKey(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "etc", "pantavisor", "ssh", "pvtest-authorized_keys")
	s := Setup{Storage: filepath.Join(dir, "storage"), SSHKeysFile: keys}
	// Written on every run: the second key replaces the first.
	for _, tc := range []struct{ key, want string }{
		{"ssh-ed25519 AAAA tester", "ssh-ed25519 AAAA tester\n"},
		{"ssh-ed25519 BBBB other\n", "ssh-ed25519 BBBB other\n"},
	} {
		s.SSHPubKey = tc.key
		if err := Prepare(context.Background(), s); err != nil {
			t.Fatalf("Prepare with key %q: %v", tc.key, err)
		}
		b, err := os.ReadFile(keys)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s = %q, %v, want %q", keys, b, err, tc.want)
		}
		if fi, err := os.Stat(keys); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, %v, want 0600", keys, fi.Mode().Perm(), err)
		}
	}
}
