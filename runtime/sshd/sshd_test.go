package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// client is the real OpenSSH client with a key of its own.
type client struct {
	dir, key, pub string
}

func tlog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tw{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tw struct{ t *testing.T }

func (w tw) Write(b []byte) (int, error) { w.t.Log(strings.TrimSpace(string(b))); return len(b), nil }

func newClient(t *testing.T) *client {
	t.Helper()
	for _, tool := range []string{"ssh", "scp", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not installed (Debian openssh-client)", tool)
		}
	}
	dir := t.TempDir()
	c := &client{dir: dir, key: filepath.Join(dir, "id")}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", c.key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	b, err := os.ReadFile(c.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	c.pub = string(b)
	return c
}

// args are the options of every ssh/scp call: no user config, a private
// known_hosts, this client's key only, never a prompt.
func (c *client) args(port string, portFlag string) []string {
	return []string{"-F", "/dev/null", portFlag, port, "-i", c.key,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
		"-o", "UserKnownHostsFile=" + filepath.Join(c.dir, "known_hosts"), "-o", "ConnectTimeout=20"}
}

// ssh runs ssh with extra arguments; it returns stdout, stderr and the exit
// code.
func (c *client) ssh(t *testing.T, srv *Server, stdin string, extra ...string) (string, string, int) {
	t.Helper()
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	cmd := exec.Command("ssh", append(c.args(port, "-p"), extra...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// start serves with the given keys text on a loopback port.
func start(t *testing.T, keys func() ([]byte, error), o Options) *Server {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	if o.HostKeyDir == "" {
		o.HostKeyDir = filepath.Join(t.TempDir(), "dropbear")
	}
	o.AuthorizedKeys = keys
	o.Log = tlog(t)
	srv, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return srv
}

func static(s string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(s), nil } }

func TestHostCommand(t *testing.T) {
	c := newClient(t)
	srv := start(t, static("# comment\n\nnot a key\n"+c.pub), Options{})
	out, errs, code := c.ssh(t, srv, "", "-l", "/", "127.0.0.1", "echo hello; echo oops >&2; exit 3")
	if out != "hello\n" || code != 3 || !strings.Contains(errs, "oops") {
		t.Errorf("ssh -l/ echo = %q, %q, exit %d; want hello, oops, exit 3", out, errs, code)
	}
	// upstream pvtest's user, and stdin reaches the command
	out, _, code = c.ssh(t, srv, "from stdin\n", "_pv_@127.0.0.1", "cat")
	if out != "from stdin\n" || code != 0 {
		t.Errorf("ssh _pv_@ cat = %q, exit %d; want the input back", out, code)
	}
}

func TestHostPTY(t *testing.T) {
	c := newClient(t)
	srv := start(t, static(c.pub), Options{})
	out, errs, code := c.ssh(t, srv, "", "-tt", "/@127.0.0.1", "tty; echo term=$TERM")
	if code != 0 || !strings.HasPrefix(out, "/dev/pts/") || !strings.Contains(out, "term=xterm") {
		t.Errorf("ssh -tt tty = %q, %q, exit %d; want a /dev/pts/N and TERM=xterm", out, errs, code)
	}
	// an interactive login shell fed from stdin
	out, errs, code = c.ssh(t, srv, "echo shell-$((6*7))\nexit 4\n", "-tt", "/@127.0.0.1")
	if code != 4 || !strings.Contains(out, "shell-42") {
		t.Errorf("ssh -tt shell = %q, %q, exit %d; want shell-42, exit 4", out, errs, code)
	}
}

// TestCopyOut fetches a file of storage as the seeds do for core dumps:
// `ssh -l/ <ip> cat /storage/corepv > local`, and with scp (SFTP).
func TestCopyOut(t *testing.T) {
	c := newClient(t)
	srv := start(t, static(c.pub), Options{})
	storage := t.TempDir()
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	src := filepath.Join(storage, "corepv")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := c.ssh(t, srv, "", "-l/", "127.0.0.1", "cat "+src)
	if code != 0 || out != string(data) {
		t.Errorf("ssh cat corepv: exit %d, %d bytes (%q), want %d bytes", code, len(out), errs, len(data))
	}

	_, port, _ := net.SplitHostPort(srv.Addr().String())
	dst := filepath.Join(t.TempDir(), "corepv")
	cmd := exec.Command("scp", append(c.args(port, "-P"), "-o", "User=/", "127.0.0.1:"+src, dst)...)
	cmd.Env = append(os.Environ(), "HOME="+c.dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scp: %v: %s", err, b)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Errorf("scp copied %d bytes, want the %d of the source", len(got), len(data))
	}
}

func TestRefused(t *testing.T) {
	c, other := newClient(t), newClient(t)
	var mu sync.Mutex
	keys := other.pub
	srv := start(t, func() ([]byte, error) { mu.Lock(); defer mu.Unlock(); return []byte(keys), nil }, Options{})
	if out, errs, code := c.ssh(t, srv, "", "/@127.0.0.1", "echo in"); code != 255 || out != "" || !strings.Contains(errs, "Permission denied (publickey)") {
		t.Errorf("ssh with a key not listed = %q, %q, exit %d; want Permission denied (publickey), exit 255", out, errs, code)
	}
	// Passwords are not even offered.
	if _, errs, code := c.ssh(t, srv, "", "-o", "PreferredAuthentications=password,keyboard-interactive", "/@127.0.0.1", "true"); code != 255 || !strings.Contains(errs, "Permission denied (publickey)") {
		t.Errorf("ssh with password auth = %q, exit %d; want Permission denied (publickey)", errs, code)
	}
	cfg := &ssh.ClientConfig{User: "/", Auth: []ssh.AuthMethod{ssh.Password("root"), ssh.Password("")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second}
	if cl, err := ssh.Dial("tcp", srv.Addr().String(), cfg); err == nil {
		cl.Close()
		t.Errorf("password login succeeded, want it refused")
	}
	// The keys are read at each login: adding one to user meta lets it in.
	mu.Lock()
	keys = other.pub + c.pub
	mu.Unlock()
	if out, errs, code := c.ssh(t, srv, "", "/@127.0.0.1", "echo in"); code != 0 || out != "in\n" {
		t.Errorf("ssh after adding the key = %q, %q, exit %d; want in", out, errs, code)
	}
	// No keys at all, or keys that cannot be read: nobody.
	srv2 := start(t, func() ([]byte, error) { return nil, os.ErrNotExist }, Options{})
	if _, _, code := c.ssh(t, srv2, "", "/@127.0.0.1", "true"); code != 255 {
		t.Errorf("ssh without authorized keys: exit %d, want 255", code)
	}
}

func TestContainerUserRefused(t *testing.T) {
	c := newClient(t)
	srv := start(t, static(c.pub), Options{})
	for _, user := range []string{"app", "../etc"} {
		_, errs, code := c.ssh(t, srv, "", "-l", user, "127.0.0.1", "true")
		if code != 1 || !strings.Contains(errs, "pantavisor:") {
			t.Errorf("ssh %s@ without containers = %q, exit %d; want a pantavisor: message, exit 1", user, errs, code)
		}
	}
	// sftp is the host's only
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	cmd := exec.Command("scp", append(c.args(port, "-P"), "-o", "User=app", "127.0.0.1:/etc/hostname", t.TempDir())...)
	cmd.Env = append(os.Environ(), "HOME="+c.dir)
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("scp from a container user succeeded (%s), want refused", b)
	}
}

func TestHostKeyKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "dropbear")
	log := tlog(t)
	a, err := loadHostKey(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadHostKey(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PublicKey().Marshal(), b.PublicKey().Marshal()) {
		t.Errorf("host key changed between two loads")
	}
	if a.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key type = %s, want ed25519", a.PublicKey().Type())
	}
	st, err := os.Stat(filepath.Join(dir, HostKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("host key file = %v, %v; want mode 0600", st, err)
	}
	os.WriteFile(filepath.Join(dir, HostKeyFile), []byte("garbage"), 0o600)
	c, err := loadHostKey(dir, log)
	if err != nil {
		t.Fatalf("loadHostKey(corrupt) = %v, want a new key", err)
	}
	if bytes.Equal(a.PublicKey().Marshal(), c.PublicKey().Marshal()) {
		t.Errorf("corrupt host key file kept the old key?")
	}
}

// TestFlood: idle connections that never log in use up MaxPending, after
// which new ones are closed at once; garbage does not stop the server;
// when the idle ones go, logins work again.
func TestFlood(t *testing.T) {
	c := newClient(t)
	srv := start(t, static(c.pub), Options{MaxPending: 2, MaxConns: 3})
	var idle []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// the banner says the server took it as a login in progress
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		b := make([]byte, 4)
		if _, err := io.ReadFull(conn, b); err != nil || string(b) != "SSH-" {
			t.Fatalf("banner = %q, %v", b, err)
		}
		idle = append(idle, conn)
	}
	extra, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := extra.Read(make([]byte, 16)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection beyond MaxPending read %d bytes, %v; want it closed", n, err)
	}
	extra.Close()
	// garbage on an accepted connection
	idle[0].Write(bytes.Repeat([]byte("\x00\xffgarbage\r\n"), 1000))
	for _, conn := range idle {
		conn.Close()
	}
	var out string
	var code int
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if out, _, code = c.ssh(t, srv, "", "/@127.0.0.1", "echo back"); code == 0 {
			break
		}
	}
	if out != "back\n" {
		t.Errorf("login after the flood = %q, exit %d; want back", out, code)
	}
}

func TestParseAuthorizedKeys(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	text := "# keys\n\n" + line + " me@host\ngarbage line\n" + `command="echo hi",no-pty ` + line + "\n"
	keys, bad := ParseAuthorizedKeys([]byte(text))
	if len(keys) != 2 || len(bad) != 1 || bad[0] != 4 {
		t.Errorf("ParseAuthorizedKeys = %d keys, bad lines %v; want 2 keys, bad [4]", len(keys), bad)
	}
	if keys, bad := ParseAuthorizedKeys([]byte(strings.Repeat("x", maxKeysSize+1))); len(keys) != 0 || len(bad) != 1 {
		t.Errorf("ParseAuthorizedKeys(one huge line) = %d keys, bad %v; want none, one bad", len(keys), bad)
	}
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	f.Add([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOu7Lm0ODd0Z2nVdYlGXU4cuYBn0CqGTaH6YsK9D7sW0 x\n#c\n\n"))
	f.Add([]byte("from=\"a\" ssh-rsa AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, bad := ParseAuthorizedKeys(b)
		if lines := bytes.Count(b, []byte("\n")) + 1; len(keys)+len(bad) > lines+1 {
			t.Errorf("%d keys and %d bad lines from %d lines", len(keys), len(bad), lines)
		}
	})
}

func TestValidContainer(t *testing.T) {
	for name, want := range map[string]bool{"pvr-sdk": true, "app_1.x": true, "": false, "..": false, "a/b": false,
		"-o": false, "a b": false, strings.Repeat("a", 129): false, "x;rm": false} {
		if got := validContainer(name); got != want {
			t.Errorf("validContainer(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestCloseEndsSessions: closing the server (DISABLE_SSH, shutdown) hangs
// up the clients and kills their processes.
func TestCloseEndsSessions(t *testing.T) {
	c := newClient(t)
	srv := start(t, static(c.pub), Options{})
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	cmd := exec.Command("ssh", append(c.args(port, "-p"), "/@127.0.0.1", "echo $$; exec sleep 1000")...)
	cmd.Env = append(os.Environ(), "HOME="+c.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil || pid <= 0 {
		t.Fatalf("session pid: %d, %v", pid, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := cmd.Wait(); err == nil {
		t.Errorf("ssh exited 0 after the server closed, want a lost connection")
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break // gone (or a zombie waiting for its reaper)
		}
		if time.Now().After(end) {
			t.Fatalf("session process %d still runs after Close", pid)
		}
	}
}

// TestFloodOneHost: one host's logins in progress are bounded below the
// overall limit, so another host still logs in.
func TestFloodOneHost(t *testing.T) {
	c := newClient(t)
	srv := start(t, static(c.pub), Options{MaxPerHost: 2})
	var idle []net.Conn
	defer func() {
		for _, conn := range idle {
			conn.Close()
		}
	}()
	for range 2 {
		conn, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, conn)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		b := make([]byte, 4)
		if _, err := io.ReadFull(conn, b); err != nil || string(b) != "SSH-" {
			t.Fatalf("banner = %q, %v", b, err)
		}
	}
	extra, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := extra.Read(make([]byte, 16)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a third login in progress from one host read %d bytes, %v; want it closed", n, err)
	}
	// another address of the loopback network is another host
	if out, errs, code := c.ssh(t, srv, "", "-b", "127.0.0.2", "/@127.0.0.1", "echo other"); out != "other\n" {
		t.Errorf("login from 127.0.0.2 during the flood = %q, %q, exit %d; want other", out, errs, code)
	}
}

// TestChannelCloseEndsProcess: a client that closes a session channel but
// keeps the connection does not leave its process running (nor holding a
// session slot).
func TestChannelCloseEndsProcess(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	srv := start(t, static(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), Options{MaxSessions: 1})
	c, err := ssh.Dial("tcp", srv.Addr().String(), &ssh.ClientConfig{User: "/", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, _ := c.NewSession()
	out, _ := s.StdoutPipe()
	if err := s.Start("echo $$; exec sleep 1000"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(end) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d of a closed session still runs", pid)
		}
	}
	// the one session slot is free again
	var got []byte
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		s2, err := c.NewSession()
		if err != nil {
			continue
		}
		got, err = s2.Output("echo again")
		if err == nil {
			break
		}
	}
	if string(got) != "again\n" {
		t.Errorf("second session = %q, want again", got)
	}
}

// logWatch is a slog handler that reports messages on a channel.
type logWatch struct {
	slog.Handler
	msgs chan string
}

func (w logWatch) Handle(ctx context.Context, r slog.Record) error {
	select {
	case w.msgs <- r.Message:
	default:
	}
	return w.Handler.Handle(ctx, r)
}

// TestAcceptOutOfFiles: running out of file descriptors makes accept fail
// for a while; the server goes on serving once they are back.
func TestAcceptOutOfFiles(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	watch := logWatch{tlog(t).Handler(), make(chan string, 64)}
	keys := ssh.MarshalAuthorizedKey(signer.PublicKey())
	srv, err := Listen(Options{Addr: "127.0.0.1:0", HostKeyDir: t.TempDir(), Log: slog.New(watch),
		AuthorizedKeys: func() ([]byte, error) { return keys, nil }})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	defer func() {
		srv.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve() = %v, want nil after Close", err)
		}
	}()

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	low := lim
	low.Cur = uint64(len(fds) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	release := func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	defer release()
	for {
		f, err := os.Open("/dev/null")
		if err != nil {
			break
		}
		files = append(files, f)
	}
	// one descriptor for the client's socket; the server's accept has none
	files[len(files)-1].Close()
	files = files[:len(files)-1]
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ssh.Dial("tcp", srv.Addr().String(), &ssh.ClientConfig{User: "/", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 60 * time.Second})
		if err != nil {
			done <- result{"", err}
			return
		}
		defer c.Close()
		s, _ := c.NewSession()
		out, err := s.Output("echo served")
		done <- result{string(out), err}
	}()
wait:
	for {
		select {
		case msg := <-watch.msgs:
			if msg == "ssh: accept" {
				break wait // it failed, and waits
			}
		case err := <-errc:
			release()
			errc <- nil // for the deferred Close
			t.Fatalf("Serve() = %v while out of descriptors, want it to go on", err)
		case <-time.After(60 * time.Second):
			t.Fatal("accept did not fail out of descriptors")
		}
	}
	release()
	r := <-done
	if r.err != nil || r.out != "served\n" {
		t.Errorf("login after running out of descriptors = %q, %v; want served", r.out, r.err)
	}
}
