package sshd

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
	"golang.org/x/crypto/ssh"
)

// HostKeyFile is the name of the host key in Options.HostKeyDir. Upstream
// dropbear keeps its own format there (dropbear_*_host_key); ours is an
// OpenSSH private key, so the two never read each other's file.
const HostKeyFile = "ssh_host_ed25519_key"

// maxKeysSize bounds an authorized_keys text: a user-meta value is small,
// and a huge one must not cost the daemon memory at every login.
const maxKeysSize = 64 << 10

// ParseAuthorizedKeys returns the public keys of an authorized_keys text
// (OpenSSH format: one key per line, optional options before the key type,
// blank lines and # comments skipped) and the numbers of the lines that
// are not keys. Options (command=, from=…) are not honoured: the key
// alone decides.
func ParseAuthorizedKeys(b []byte) (keys []ssh.PublicKey, bad []int) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxKeysSize)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			bad = append(bad, n)
			continue
		}
		keys = append(keys, k)
	}
	if sc.Err() != nil { // a line longer than the whole limit
		bad = append(bad, -1)
	}
	return keys, bad
}

// loadHostKey reads the host key in dir, or makes one (ed25519) and keeps
// it there, so the device shows the same host key across boots. A file
// that does not parse is replaced, with a warning: a debug server that
// never starts again is worse than a changed host key.
func loadHostKey(dir string, log *slog.Logger) (ssh.Signer, error) {
	path := filepath.Join(dir, HostKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s, perr := ssh.ParsePrivateKey(b)
		if perr == nil {
			return s, nil
		}
		log.Warn("ssh: host key does not parse: making a new one", "path", path, "err", perr)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "pantavisor")
	if err != nil {
		return nil, fmt.Errorf("encode host key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("host key dir: %w", err)
	}
	if err := atomicfile.Write(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, fmt.Errorf("store host key: %w", err)
	}
	log.Info("ssh: new host key", "path", path)
	return ssh.NewSignerFromKey(priv)
}
