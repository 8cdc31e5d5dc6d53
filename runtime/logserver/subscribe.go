package logserver

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"syscall"
)

// kmsgMax is the largest /dev/kmsg record.
const kmsgMax = 8192

// subscription pumps lines from one reader into the server.
type subscription struct {
	r    io.Reader
	once sync.Once
}

// stop closes the reader (when it is an io.Closer) so its pump ends.
func (sub *subscription) stop() {
	sub.once.Do(func() {
		if c, ok := sub.r.(io.Closer); ok {
			c.Close()
		}
	})
}

func subKey(platform, source string) string { return platform + "\x00" + source }

// Subscribe logs every line read from r as <platform>/<source> at level,
// until r ends or Unsubscribe. The server owns r from here on: it is closed
// (when an io.Closer) on EOF, Unsubscribe or Close. Only one reader per
// platform/source pair exists; a new one replaces the old. Pass pollable
// files (pipes, ptys, sockets, os.Pipe) so Close can interrupt a read.
func (s *Server) Subscribe(r io.Reader, platform, source string, level Level) {
	s.subscribe(r, platform, source, level, nil)
}

// SubscribeKmsg logs the kernel ring buffer (an opened /dev/kmsg) as
// pantavisor/dmesg: each record's syslog priority gives its level, the
// "pri,seq,usec,flags;" prefix and the continuation lines are dropped.
// consoleLoglevel is the kernel's console_loglevel when the stdout outputs
// write to the kernel's console (0 when not): the records below it are on
// that console already, so the stdout outputs leave them out (under TCG
// the boot's ~400 kernel lines printed twice cost ~0.3 s of the one CPU).
func (s *Server) SubscribeKmsg(r io.Reader, consoleLoglevel int) {
	s.subscribe(r, PlatformPantavisor, "dmesg", Info, func(line []byte, e *Entry) bool {
		pri, msg, ok := parseKmsg(line)
		if !ok {
			return false
		}
		e.Msg, e.Level = string(msg), Info
		if pri >= 0 {
			e.Level = syslogLevel(pri)
			e.onConsole = pri < consoleLoglevel
		}
		return true
	})
}

// parseKmsg splits one /dev/kmsg line into its syslog severity (-1 when
// it has no prefix) and message; ok=false drops a continuation line.
func parseKmsg(line []byte) (pri int, msg []byte, ok bool) {
	if len(line) == 0 || line[0] == ' ' {
		return 0, nil, false // continuation "KEY=value" line
	}
	semi := bytes.IndexByte(line, ';')
	if semi < 0 {
		return -1, line, true
	}
	pri = 0
	for _, c := range line[:semi] {
		if c < '0' || c > '9' {
			break
		}
		pri = pri*10 + int(c-'0')
		if pri > 1<<20 {
			break
		}
	}
	return pri & 7, line[semi+1:], true
}

// lineParser turns a subscribed line into e's Msg and Level; false drops it.
type lineParser func(line []byte, e *Entry) bool

func (s *Server) subscribe(r io.Reader, platform, source string, level Level, parse lineParser) {
	sub := &subscription{r: r}
	key := subKey(platform, source)
	s.subsMu.Lock()
	if s.closed.Load() {
		s.subsMu.Unlock()
		sub.stop()
		return
	}
	if old := s.subs[key]; old != nil {
		old.stop()
	}
	s.subs[key] = sub
	s.wg.Add(1)
	s.subsMu.Unlock()
	go func() {
		defer s.wg.Done()
		s.pump(sub, platform, source, level.clamp(), parse)
		sub.stop()
		s.subsMu.Lock()
		if s.subs[key] == sub {
			delete(s.subs, key)
		}
		s.subsMu.Unlock()
	}()
}

// Unsubscribe stops the reader subscribed as platform/source, if any.
func (s *Server) Unsubscribe(platform, source string) {
	key := subKey(platform, source)
	s.subsMu.Lock()
	sub := s.subs[key]
	delete(s.subs, key)
	s.subsMu.Unlock()
	if sub != nil {
		sub.stop()
	}
}

// pump reads r line by line; a line longer than MaxLine is cut into
// MaxLine pieces, a final unterminated line is logged at EOF.
func (s *Server) pump(sub *subscription, platform, source string, level Level, parse lineParser) {
	size := s.o.MaxLine
	if parse != nil && size < kmsgMax {
		size = kmsgMax // a /dev/kmsg read must fit a whole record
	}
	buf := make([]byte, 0, size)
	emit := func(line []byte) {
		line = bytes.TrimSuffix(line, []byte{'\r'})
		e := Entry{Time: s.now(), Level: level, Platform: platform, Source: source}
		if parse == nil {
			e.Msg = string(line)
		} else if !parse(line, &e) {
			return
		}
		s.dispatch(e)
	}
	cut := false // the last line was cut at MaxLine: drop a '\n' right after
	for {
		n, err := sub.r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		rest := buf
		if cut && len(rest) > 0 {
			if rest[0] == '\n' {
				rest = rest[1:]
			}
			cut = false
		}
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			emit(rest[:i])
			rest = rest[i+1:]
		}
		if len(rest) == cap(buf) {
			s.truncated.Add(1)
			emit(rest)
			rest = rest[:0]
			cut = true
		}
		buf = buf[:copy(buf, rest)]
		if parse != nil && errors.Is(err, syscall.EPIPE) {
			continue // /dev/kmsg: records were overwritten before we read them
		}
		if err != nil {
			if len(buf) > 0 {
				emit(buf)
			}
			return
		}
	}
}
