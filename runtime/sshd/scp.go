package sshd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The legacy scp protocol (`scp -O`, and OpenSSH's scp before 9.0) runs
// `scp -f <paths>` on the server; a device has no scp program (dropbear
// brought its own upstream), so the host users get this built-in source.
// Copying to the device goes through SFTP.

// errUsage is a command line this scp does not serve.
var errUsage = errors.New("usage")

// scpCommand parses a remote scp command line ("scp [-prdvq] -f [--]
// paths…"); ok is false when cmd is not an scp command at all.
func scpCommand(cmd string) (paths []string, recursive, times, ok bool, err error) {
	words, werr := shellWords(cmd)
	if werr != nil || len(words) == 0 || words[0] != "scp" {
		return nil, false, false, false, nil
	}
	from := false
	i := 1
	for ; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			i++
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			break
		}
		for _, c := range w[1:] {
			switch c {
			case 'f':
				from = true
			case 'r':
				recursive = true
			case 'p':
				times = true
			case 'd', 'v', 'q':
			case 't':
				return nil, false, false, true, fmt.Errorf("%w: copying to the device is served over SFTP (scp without -O)", errUsage)
			default:
				return nil, false, false, true, fmt.Errorf("%w: scp option -%c", errUsage, c)
			}
		}
	}
	if !from || i >= len(words) {
		return nil, false, false, true, fmt.Errorf("%w: scp -f <path>", errUsage)
	}
	for _, p := range words[i:] {
		// the remote shell of the legacy protocol expands patterns
		if m, gerr := filepath.Glob(p); gerr == nil && len(m) > 0 {
			paths = append(paths, m...)
		} else {
			paths = append(paths, p)
		}
	}
	return paths, recursive, times, true, nil
}

// shellWords splits a command line as sh does for words: blanks separate,
// quotes and backslashes group. No expansion.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false // a word is started
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			in = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += 1 + end
			in = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated quote")
			}
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// scpSource sends paths to the scp client on rw; a path that cannot be
// sent is reported to the client, which goes on with the next, and makes
// the result an error.
func scpSource(rw io.ReadWriter, paths []string, recursive, times bool) error {
	s := &scpSender{r: bufio.NewReader(rw), w: rw, recursive: recursive, times: times}
	if err := s.ack(); err != nil { // the sink starts with a zero byte
		return err
	}
	var failed error
	for _, p := range paths {
		if err := s.send(p); err != nil {
			var fatal *scpFatal
			if errors.As(err, &fatal) {
				return err
			}
			failed = err
			if werr := s.warn(err); werr != nil {
				return werr
			}
		}
	}
	return failed
}

type scpSender struct {
	r         *bufio.Reader
	w         io.Writer
	recursive bool
	times     bool
}

// scpFatal is a broken conversation: nothing more can be sent.
type scpFatal struct{ err error }

func (e *scpFatal) Error() string { return e.err.Error() }
func (e *scpFatal) Unwrap() error { return e.err }

// ack reads the sink's answer: 0 goes on, 1 is a warning and 2 an error,
// each followed by a message line.
func (s *scpSender) ack() error {
	b, err := s.r.ReadByte()
	if err != nil {
		return &scpFatal{fmt.Errorf("scp: %w", err)}
	}
	if b == 0 {
		return nil
	}
	msg, _ := s.r.ReadString('\n')
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	return &scpFatal{fmt.Errorf("scp: client: %s", strings.TrimSpace(msg))}
}

// line sends a protocol line and waits for its ack.
func (s *scpSender) line(format string, args ...any) error {
	if _, err := fmt.Fprintf(s.w, format, args...); err != nil {
		return &scpFatal{err}
	}
	return s.ack()
}

// warn reports a failed path to the client (code 1: it goes on).
func (s *scpSender) warn(err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if _, werr := fmt.Fprintf(s.w, "\x01scp: %s\n", msg); werr != nil {
		return &scpFatal{werr}
	}
	return nil
}

// send sends one file, or one directory tree with -r.
func (s *scpSender) send(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	name := filepath.Base(path)
	if strings.ContainsAny(name, "\n") {
		return fmt.Errorf("%s: name has a newline", path)
	}
	if s.times {
		mt := fi.ModTime().Unix()
		if err := s.line("T%d 0 %d 0\n", mt, mt); err != nil {
			return err
		}
	}
	switch {
	case fi.Mode().IsRegular():
		return s.file(path, name, fi)
	case fi.IsDir() && s.recursive:
		if err := s.line("D%04o 0 %s\n", fi.Mode().Perm(), name); err != nil {
			return err
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			if werr := s.warn(err); werr != nil {
				return werr
			}
		}
		var failed error
		for _, e := range entries {
			if err := s.send(filepath.Join(path, e.Name())); err != nil {
				var fatal *scpFatal
				if errors.As(err, &fatal) {
					return err
				}
				failed = err
				if werr := s.warn(err); werr != nil {
					return werr
				}
			}
		}
		if err := s.line("E\n"); err != nil {
			return err
		}
		return failed
	case fi.IsDir():
		return fmt.Errorf("%s: not a regular file (use -r)", path)
	default:
		return fmt.Errorf("%s: not a regular file", path)
	}
}

// file sends a regular file: exactly the size announced, padded with
// zeros if it shrank meanwhile.
func (s *scpSender) file(path, name string, fi os.FileInfo) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	size := fi.Size()
	if err := s.line("C%04o %d %s\n", fi.Mode().Perm(), size, name); err != nil {
		return err
	}
	n, err := io.Copy(s.w, io.LimitReader(f, size))
	if err != nil && n < size {
		var rerr error = err
		if _, werr := io.CopyN(s.w, zeros{}, size-n); werr != nil {
			return &scpFatal{werr}
		}
		if _, werr := s.w.Write([]byte{0}); werr != nil {
			return &scpFatal{werr}
		}
		if aerr := s.ack(); aerr != nil {
			return aerr
		}
		return fmt.Errorf("%s: %w", path, rerr)
	}
	if n < size {
		if _, err := io.CopyN(s.w, zeros{}, size-n); err != nil {
			return &scpFatal{err}
		}
	}
	if _, err := s.w.Write([]byte{0}); err != nil {
		return &scpFatal{err}
	}
	return s.ack()
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
