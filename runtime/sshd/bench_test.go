package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// benchServer serves one Go client key on loopback.
func benchServer(b *testing.B) (*Server, *ssh.ClientConfig) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	keys := ssh.MarshalAuthorizedKey(signer.PublicKey())
	srv, err := Listen(Options{Addr: "127.0.0.1:0", HostKeyDir: b.TempDir(), Log: slog.New(slog.DiscardHandler),
		AuthorizedKeys: func() ([]byte, error) { return keys, nil }})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	b.Cleanup(func() { srv.Close() })
	return srv, &ssh.ClientConfig{User: "/", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
}

// BenchmarkLoginExec: one connection, login and `true` on the host per op.
func BenchmarkLoginExec(b *testing.B) {
	srv, cfg := benchServer(b)
	for b.Loop() {
		c, err := ssh.Dial("tcp", srv.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := c.NewSession()
		if err := s.Run("true"); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkCat: copying a 16 MiB file out with `cat` (bytes/s).
func BenchmarkCat(b *testing.B) {
	srv, cfg := benchServer(b)
	f := filepath.Join(b.TempDir(), "blob")
	data := make([]byte, 16<<20)
	rand.Read(data)
	os.WriteFile(f, data, 0o600)
	c, err := ssh.Dial("tcp", srv.Addr().String(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, _ := c.NewSession()
		out, _ := s.StdoutPipe()
		if err := s.Start("cat " + f); err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, out)
		if err := s.Wait(); err != nil || n != int64(len(data)) {
			b.Fatalf("cat: %d bytes, %v", n, err)
		}
	}
}
