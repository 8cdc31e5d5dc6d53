package pantavisor

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/sshd"
	"golang.org/x/crypto/ssh"
)

// TestDebugSSH: the daemon serves ssh with the keys of user meta
// pvr-sdk.authorized_keys and a host key kept in storage; DISABLE_SSH
// stops it and ENABLE_SSH starts it again.
func TestDebugSSH(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	storage := newStorage(t)
	in := start(t, storage, func(o *Options) { o.SSHAddr = addr })

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ClientConfig{User: "/", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	login := func() (string, error) {
		c, err := ssh.Dial("tcp", addr, cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			return "", err
		}
		out, err := s.Output("echo up")
		return string(out), err
	}
	// up (PV_DEBUG_SSH defaults to 1) but nobody's key is known yet
	await(t, "ssh listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if _, err := login(); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("login without authorized keys = %v, want refused", err)
	}
	key := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if code, b := in.call(t, "PUT", "/user-meta/"+SSHKeysMeta, bytes.NewReader(key)); code != 200 {
		t.Fatalf("PUT user-meta = %d %s", code, b)
	}
	if out, err := login(); err != nil || out != "up\n" {
		t.Fatalf("login with the user-meta key = %q, %v; want up", out, err)
	}
	if _, err := os.Stat(filepath.Join(storage, "cache", "dropbear", sshd.HostKeyFile)); err != nil {
		t.Errorf("host key not kept in storage: %v", err)
	}

	if code, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"DISABLE_SSH","payload":""}`)); code != 200 {
		t.Fatalf("DISABLE_SSH = %d %s", code, b)
	}
	await(t, "ssh closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if code, b := in.call(t, "POST", "/commands", strings.NewReader(`{"op":"ENABLE_SSH","payload":""}`)); code != 200 {
		t.Fatalf("ENABLE_SSH = %d %s", code, b)
	}
	await(t, "ssh back", func() bool { out, err := login(); return err == nil && out == "up\n" })
}

// await polls cond until it holds, failing the test after a generous
// deadline (a loaded machine is slow; nothing is timed).
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not reached in 30s", what)
}

// TestSSHKeysFile: PV_DEBUG_SSH_AUTHORIZED_KEYS names a file of
// <PV_SYSTEM_ETCPANTAVISORDIR>/ssh (where pv-appengine installs pvtest's
// key); the user-meta key is then not used.
func TestSSHKeysFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	etc := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	os.MkdirAll(filepath.Join(etc, "ssh"), 0o755)
	os.WriteFile(filepath.Join(etc, "ssh", "pvtest-authorized_keys"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644)
	in := start(t, newStorage(t), func(o *Options) {
		o.SSHAddr = addr
		o.Env = append(o.Env, "PV_DEBUG_SSH_AUTHORIZED_KEYS=../pvtest-authorized_keys", "PV_SYSTEM_ETCPANTAVISORDIR="+etc)
	})
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	if code, b := in.call(t, "PUT", "/user-meta/"+SSHKeysMeta, bytes.NewReader(ssh.MarshalAuthorizedKey(otherSigner.PublicKey()))); code != 200 {
		t.Fatalf("PUT user-meta = %d %s", code, b)
	}
	login := func(s ssh.Signer) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "_pv_", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err == nil {
			c.Close()
		}
		return err
	}
	await(t, "login with the file's key", func() bool { return login(signer) == nil })
	if err := login(otherSigner); err == nil {
		t.Errorf("the user-meta key logged in, want only the file's")
	}
}
