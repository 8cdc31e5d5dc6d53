package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/container"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/sign"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
	"github.com/pantavisor/pantavisor-go/runtime/pvrsdk"
	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// deviceRemote serves the storage at root (trails/0 and objects/) as a
// device does: the real pvr-sdk server (runtime/pvrsdk) on an HTTP test
// port, in front of a pv-ctrl stand-in on a unix socket answering the two
// reads a clone makes (the running state, an object). It returns the pvr
// remote URL, http://127.0.0.1:<port>/cgi-bin/pvr.
func deviceRemote(t *testing.T, root string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pvctrl") // short: a socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "pv-ctrl")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctrl := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var name string
		switch sha, ok := strings.CutPrefix(r.URL.Path, "/objects/"); {
		case r.Method != "GET":
		case r.URL.Path == "/steps/current":
			name = filepath.Join(root, "trails/0/.pvr/json")
		case ok && !strings.ContainsAny(sha, "/.") && sha != "":
			name = filepath.Join(root, "objects", sha)
		}
		f, err := os.Open(name)
		if name == "" || err != nil {
			// pv-ctrl's answer to a missing object or a bad request
			http.Error(w, `{"Error":"Request has bad object name"}`, http.StatusBadRequest)
			return
		}
		defer f.Close()
		io.Copy(w, f)
	})}
	go ctrl.Serve(l)
	t.Cleanup(func() { ctrl.Close() })
	sdk, err := pvrsdk.New(pvrsdk.Options{Client: client.New(sock), PvtxDir: t.TempDir(), LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sdk)
	t.Cleanup(srv.Close)
	return srv.URL + "/cgi-bin/pvr"
}

// TestMergeSrcClone builds trails/0 from a PVR_MERGE_SRC clone URL: the
// reference device is cloned with pvr's protocol from a pvr-sdk server
// into the work directory and merged like a checkout (its container and
// its signature kept). A device that cannot be reached, or an offline
// build, stops with the clear remote-source error, naming the cause first.
func TestMergeSrcClone(t *testing.T) {
	refRoot, refState, certPath := signedReference(t)
	repo := deviceRemote(t, refRoot)

	in := t.TempDir()
	devCA, _ := os.ReadFile(filepath.Join("../../ca/developer", sign.FileCACert))
	otherPEM, _ := os.ReadFile(certPath)
	bundle := filepath.Join(in, "bundle.crt")
	kern := filepath.Join(in, "kernel")
	for p, data := range map[string]string{bundle: string(devCA) + string(otherPEM), kern: "bzImage"} {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &recipe.Recipe{Name: "t", Arch: "amd64", Bootloader: recipe.Bootloader{Type: recipe.BootGrub}}
	work := t.TempDir()
	b := &run{o: Options{Repo: in, Cache: t.TempDir(), Epoch: 1700000000, PvsCertPEM: bundle, Progress: io.Discard},
		r: r, work: work, res: &Result{Sizes: map[string]int64{}}}
	src, err := b.cloneMergeSrc(context.Background(), mergeRemote(repo))
	if err != nil {
		t.Fatalf("cloneMergeSrc(%s) = %v", repo, err)
	}
	if want := filepath.Join(work, mergeCloneDir); src != want {
		t.Errorf("clone in %s, want %s", src, want)
	}
	b.o.MergeSrc = src
	bsp := &bspFiles{Objects: map[string]string{"kernel.img": kern}, JSON: map[string]any{"run.json": map[string]any{"linux": "kernel.img"}}}
	if _, err := b.makeStorage(context.Background(), &packages{}, &binaries{}, bsp); err != nil {
		t.Fatalf("makeStorage(clone of %s) = %v", repo, err)
	}
	data, err := os.ReadFile(filepath.Join(work, "storage/trails/0/.pvr/json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pv-app/run.json", "pv-app/root.squashfs", "pv-app/lxc.container.conf", "_sigs/pv-app.json"} {
		got, _ := st.Raw(k)
		want, _ := refState.Raw(k)
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("trails/0 %s = %s, want the device's %s", k, got, want)
		}
	}
	if got, want := signerCN(t, st.Signatures()["_sigs/pv-app.json"]), "acme-signer"; got != want {
		t.Errorf("_sigs/pv-app.json signer = %q, want %q (the device's)", got, want)
	}

	// unreachable: a port nothing listens on
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/cgi-bin/pvr"
	l.Close()
	for _, tc := range []struct {
		name, src string
		offline   bool
		want      string
	}{
		{"unreachable", dead, false, "clone: "},
		{"offline", repo, true, "the build is offline"},
		{"not http", "git@gitlab.com:x/y.git", false, "not a pvr remote"},
	} {
		b := &run{o: Options{Offline: tc.offline, Progress: io.Discard}, work: t.TempDir(), res: &Result{}}
		_, err := b.cloneMergeSrc(context.Background(), tc.src)
		if !errors.Is(err, container.ErrRemoteSource) || !strings.HasPrefix(err.Error(), "pvr source "+tc.src+": "+tc.want) {
			t.Errorf("%s: cloneMergeSrc(%s) = %v, want ErrRemoteSource starting %q", tc.name, tc.src, err, tc.want)
		}
	}
}

// TestMergeRemote tells clone URLs and pvr's bare-IP shorthand from local
// checkouts and exports.
func TestMergeRemote(t *testing.T) {
	local := t.TempDir()
	ipDir := filepath.Join(local, "10.0.0.9")
	os.Mkdir(ipDir, 0o755)
	t.Chdir(local)
	for src, want := range map[string]string{
		"":                                  "",
		local:                               "",
		"10.0.0.9":                          "", // a local directory of that name wins
		"192.168.1.20":                      "192.168.1.20",
		"http://10.0.0.5:12368/cgi-bin/pvr": "http://10.0.0.5:12368/cgi-bin/pvr",
		"https://pvr.pantahub.com/u/dev":    "https://pvr.pantahub.com/u/dev",
		"missing/checkout/.pvr":             "",
	} {
		if got := mergeRemote(src); got != want {
			t.Errorf("mergeRemote(%q) = %q, want %q", src, got, want)
		}
	}
}

// TestBuildMergeSrcURL: Build takes a clone URL in PVR_MERGE_SRC (it used
// to refuse every one): the device is cloned into the work directory
// before the first stage; offline, the build stops with the
// remote-source error before anything is built.
func TestBuildMergeSrcURL(t *testing.T) {
	refRoot, _, _ := signedReference(t)
	repo := deviceRemote(t, refRoot)
	out := t.TempDir()
	res, err := Build(context.Background(), Options{Repo: "../..", Target: "x64-uefi", Out: out, Cache: t.TempDir(),
		MergeSrc: repo, Offline: true, Epoch: 1700000000, Until: "signing keys"})
	if !errors.Is(err, container.ErrRemoteSource) || !strings.Contains(err.Error(), "offline") {
		t.Errorf("Build(PVR_MERGE_SRC=%s, offline) = %v, want the remote-source error", repo, err)
	}
	res, err = Build(context.Background(), Options{Repo: "../..", Target: "x64-uefi", Out: out, Cache: t.TempDir(),
		MergeSrc: repo, Epoch: 1700000000, Until: "signing keys"})
	if err != nil {
		t.Fatalf("Build(PVR_MERGE_SRC=%s) = %v", repo, err)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "PVR_MERGE_SRC: cloned "+repo) {
		t.Errorf("notes %q: want the clone of %s", res.Notes, repo)
	}
	if _, err := os.Stat(filepath.Join(out, "work", mergeCloneDir, "json")); err != nil {
		t.Errorf("clone state: %v", err)
	}
}
