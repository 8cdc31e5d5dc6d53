package pantavisor

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestDebugSSHContainer: `ssh <container>@` runs the command inside that
// container of the running revision (its mount namespace, not the
// host's), and a name that is not a container is refused.
func TestDebugSSHContainer(t *testing.T) {
	e := newCtEnv(t) // skips without root, LXC or busybox
	b := make([]byte, 3)
	rand.Read(b)
	name := "ssh-" + hex.EncodeToString(b)
	e.writeRev(t, "0", []plat{{name: name}}, "", nil)

	// This test binary is not the multi-call pantavisor: build it, and
	// enter as the daemon does by default (/proc/self/exe pventer …).
	_, self, _, _ := runtime.Caller(0)
	pv := filepath.Join(t.TempDir(), "pantavisor")
	build := exec.Command("go", "build", "-o", pv, "./runtime/cmd/pantavisor")
	build.Dir = filepath.Join(filepath.Dir(self), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pantavisor: %v: %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	in := e.start(t, "0", func(o *Options) { o.SSHAddr = addr; o.Pventer = []string{pv, "pventer"} })
	in.waitFor(t, "started", statusIs(map[string]string{name: "STARTED"}))

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	if code, b := in.call(t, "PUT", "/user-meta/"+SSHKeysMeta, bytes.NewReader(ssh.MarshalAuthorizedKey(signer.PublicKey()))); code != 200 {
		t.Fatalf("PUT user-meta = %d %s", code, b)
	}
	run := func(user, command string) (string, error) {
		cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
		c, err := ssh.Dial("tcp", addr, cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			return "", err
		}
		var errb bytes.Buffer
		s.Stderr = &errb
		out, err := s.Output(command)
		return string(out) + errb.String(), err
	}
	var out string
	await(t, "ssh up", func() bool { out, err = run(name, "readlink /proc/self/ns/mnt"); return err == nil })
	host, _ := os.Readlink("/proc/self/ns/mnt")
	inside := in.exec(t, name, "readlink", "/proc/self/ns/mnt")
	if strings.TrimSpace(out) != inside || inside == host {
		t.Errorf("ssh %s@ readlink /proc/self/ns/mnt = %q, want the container's %q (host %q)", name, out, inside, host)
	}
	if out, err := run("nothere", "true"); err == nil || !strings.Contains(out, "no such container") {
		t.Errorf("ssh nothere@ = %q, %v; want refused: no such container", out, err)
	}
}
