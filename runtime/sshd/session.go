package sshd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// maxCommand bounds an exec request's command line.
const maxCommand = 64 << 10

// session is one session channel: at most one pty, then one shell, exec or
// subsystem request.
type session struct {
	srv  *Server
	user string
	ch   ssh.Channel

	term       string
	cols, rows uint32
	pty        *os.File // master, once a pty-req was granted
	tty        *os.File // its slave
}

// serve answers the channel's requests until the process started by
// shell/exec/subsystem ends, the client closes it, or ctx ends.
func (ss *session) serve(ctx context.Context, reqs <-chan *ssh.Request) {
	// The session's process lives as long as the session: a client that
	// closes the channel (or the connection) ends it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer ss.ch.Close()
	defer func() {
		if ss.pty != nil {
			ss.pty.Close()
			ss.tty.Close()
		}
	}()
	done := make(chan uint32, 1)
	started := false
	for {
		select {
		case <-ctx.Done():
			return
		case code := <-done:
			ss.exit(code)
			go ssh.DiscardRequests(reqs)
			return
		case r, ok := <-reqs:
			if !ok {
				return // the client closed the channel
			}
			ok = false
			switch r.Type {
			case "pty-req":
				ok = !started && ss.pty == nil && ss.ptyReq(r.Payload)
			case "window-change":
				if ss.pty != nil && len(r.Payload) >= 8 {
					setWinsize(ss.pty, binary.BigEndian.Uint32(r.Payload), binary.BigEndian.Uint32(r.Payload[4:]))
					ok = true
				}
			case "env":
				ok = true // accepted and ignored: the environment is ours
			case "shell", "exec", "subsystem":
				if started {
					break
				}
				var err error
				ok, err = ss.start(ctx, r, done)
				if err != nil {
					eol := "\n"
					if ss.pty != nil {
						eol = "\r\n" // the client's terminal is raw
					}
					fmt.Fprintf(ss.ch.Stderr(), "pantavisor: %v%s", err, eol)
					ss.srv.log.Info("ssh: session refused", "user", ss.user, "request", r.Type, "err", err)
				}
				started = ok
				if !ok {
					// A failed start ends the session with a status,
					// as a shell that cannot run the command does.
					if r.WantReply {
						_ = r.Reply(true, nil)
					}
					ss.exit(1)
					go ssh.DiscardRequests(reqs)
					return
				}
			}
			if r.WantReply {
				_ = r.Reply(ok, nil)
			}
		}
	}
}

// exit sends the exit status and closes the channel.
func (ss *session) exit(code uint32) {
	_ = ss.ch.CloseWrite()
	_, _ = ss.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{code}))
	_ = ss.ch.Close()
}

// ptyReq parses a pty-req and opens the pty.
func (ss *session) ptyReq(payload []byte) bool {
	var req struct {
		Term             string
		Cols, Rows, W, H uint32
		Modes            string
	}
	if err := ssh.Unmarshal(payload, &req); err != nil {
		return false
	}
	m, t, err := openPTY()
	if err != nil {
		ss.srv.log.Warn("ssh: pty", "err", err)
		return false
	}
	ss.pty, ss.tty = m, t
	ss.term, ss.cols, ss.rows = sanitizeTerm(req.Term), req.Cols, req.Rows
	setWinsize(m, req.Cols, req.Rows)
	return true
}

// sanitizeTerm keeps a TERM value made of safe characters.
func sanitizeTerm(t string) string {
	if len(t) > 64 || strings.ContainsFunc(t, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '+')
	}) {
		return "vt100"
	}
	return t
}

// start runs what a shell, exec or subsystem request asks for; the exit
// code goes to done.
func (ss *session) start(ctx context.Context, r *ssh.Request, done chan<- uint32) (bool, error) {
	host := slices.Contains(HostUsers, ss.user)
	var argv []string
	switch r.Type {
	case "shell":
		// a login shell, as dropbear starts (reads /etc/profile)
		argv = []string{ss.srv.o.Shell, "-l"}
		if !host {
			argv[0] = "/bin/sh"
		}
	case "exec":
		var req struct{ Command string }
		if err := ssh.Unmarshal(r.Payload, &req); err != nil || len(req.Command) > maxCommand {
			return false, errors.New("bad exec request")
		}
		if host {
			if paths, rec, times, ok, err := scpCommand(req.Command); ok {
				if err != nil {
					return false, err
				}
				go func() {
					code := uint32(0)
					if err := scpSource(ss.ch, paths, rec, times); err != nil {
						ss.srv.log.Info("ssh: scp", "user", ss.user, "err", err)
						code = 1
					}
					done <- code
				}()
				return true, nil
			}
		}
		argv = []string{ss.srv.o.Shell, "-c", req.Command}
		if !host {
			argv[0] = "/bin/sh"
		}
	case "subsystem":
		var req struct{ Name string }
		if err := ssh.Unmarshal(r.Payload, &req); err != nil {
			return false, errors.New("bad subsystem request")
		}
		if req.Name != "sftp" || !host {
			return false, fmt.Errorf("subsystem %q is served to the host users (%s) only as sftp", req.Name, strings.Join(HostUsers, " "))
		}
		go ss.sftp(done)
		return true, nil
	}
	cmd, err := ss.command(argv, host)
	if err != nil {
		return false, err
	}
	return true, ss.run(ctx, cmd, done)
}

// command builds the session's process: on the host, or in the container
// named by the login.
func (ss *session) command(argv []string, host bool) (*exec.Cmd, error) {
	env := []string{"TERM=" + ss.term}
	if ss.term == "" {
		env[0] = "TERM=dumb"
	}
	if host {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(append([]string{"HOME=/", "USER=root", "LOGNAME=root", "SHELL=" + argv[0],
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, ss.srv.o.Env...), env...)
		cmd.Dir = "/"
		return cmd, nil
	}
	if !validContainer(ss.user) {
		return nil, fmt.Errorf("%q: %w", ss.user, ErrNoContainer)
	}
	if ss.srv.o.Enter == nil {
		return nil, errors.New("container logins are not served")
	}
	cmd, err := ss.srv.o.Enter(ss.user, argv)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd, nil
}

// validContainer reports whether name can be a container name (it becomes
// a path element and a command argument).
func validContainer(name string) bool {
	if name == "" || len(name) > 128 || name[0] == '.' || name[0] == '-' {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})
}

// run starts cmd in its own session (on the pty, or on pipes) and reports
// its exit code to done. When ctx ends (the connection is gone) the
// process group is killed.
func (ss *session) run(ctx context.Context, cmd *exec.Cmd, done chan<- uint32) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var output sync.WaitGroup
	if ss.pty != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ss.tty, ss.tty, ss.tty
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	} else {
		cmd.Stdout, cmd.Stderr = ss.ch, ss.ch.Stderr()
		// A background child keeping the pipes open must not hold the
		// session forever.
		cmd.WaitDelay = 2 * time.Second
	}
	var stdin io.WriteCloser
	if ss.pty == nil {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	if ss.pty != nil {
		ss.tty.Close() // the child has it; the master sees EIO once it exits
		output.Add(1)
		go func() { defer output.Done(); _, _ = io.Copy(ss.ch, ss.pty) }()
		go func() { _, _ = io.Copy(ss.pty, ss.ch) }()
	} else {
		// Not waited for: the client may never close stdin.
		go func() { _, _ = io.Copy(stdin, ss.ch); stdin.Close() }()
	}
	var mu sync.Mutex
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// Only while the process is not reaped, when its group id
			// is still its own (a kill racing the reaping itself could
			// only hit a reused id after a pid wrap-around).
			mu.Lock()
			select {
			case <-exited:
			default:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			mu.Unlock()
		case <-exited:
		}
	}()
	go func() {
		err := cmd.Wait()
		mu.Lock()
		close(exited)
		mu.Unlock()
		// The pty's last output is read before the status is sent; a
		// grandchild holding the pty open is not waited for.
		drained := make(chan struct{})
		go func() { output.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
		}
		done <- exitCode(cmd, err)
	}()
	return nil
}

// exitCode maps a process end to an ssh exit status (signals as 128+n, as
// shells do).
func exitCode(cmd *exec.Cmd, err error) uint32 {
	if cmd.ProcessState == nil {
		return 255
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + uint32(ws.Signal())
	}
	if c := cmd.ProcessState.ExitCode(); c >= 0 {
		return uint32(c)
	}
	if err != nil {
		return 255
	}
	return 0
}

// sftp serves the SFTP subsystem (what scp uses since OpenSSH 9) on the
// host's file system.
func (ss *session) sftp(done chan<- uint32) {
	// The server must not close the channel: the exit status goes after.
	// A lost connection ends it by failing its reads.
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.Writer
		io.Closer
	}{ss.ch, ss.ch, io.NopCloser(nil)})
	if err != nil {
		done <- 1
		return
	}
	err = srv.Serve()
	srv.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		ss.srv.log.Info("ssh: sftp", "user", ss.user, "err", err)
		done <- 1
		return
	}
	done <- 0
}
