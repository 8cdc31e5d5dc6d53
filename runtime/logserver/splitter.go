package logserver

import "bytes"

// splitter cuts a pv-ctrl-log byte stream into messages. A message starting
// with a NUL byte is a binary frame (both valid codes, 0 and 256, start with
// 0x00 in little-endian); anything else is a text message ended by NUL (as
// glibc's syslog() sends on stream sockets) or '\n', or by the end of what
// the client wrote (flush).
type splitter struct {
	buf      []byte
	off      int
	maxLine  int
	maxFrame int
	discard  bool // skipping the tail of an over-long text line
}

// message is one framed message; data aliases the splitter's buffer and is
// valid until the next read.
type message struct {
	binary    bool
	code      int32
	data      []byte
	truncated bool
}

func newSplitter(maxLine, maxFrame int) *splitter {
	return &splitter{buf: make([]byte, 0, 4096), maxLine: maxLine, maxFrame: maxFrame}
}

// space returns free buffer space for the next read, compacting and growing
// up to the largest possible message.
func (s *splitter) space() []byte {
	if s.off > 0 {
		n := copy(s.buf, s.buf[s.off:])
		s.buf = s.buf[:n]
		s.off = 0
	}
	limit := s.maxFrame + frameHeaderSize
	if s.maxLine > limit {
		limit = s.maxLine
	}
	if len(s.buf) == cap(s.buf) && cap(s.buf) < limit {
		n := 2 * cap(s.buf)
		if n > limit {
			n = limit
		}
		nb := make([]byte, len(s.buf), n)
		copy(nb, s.buf)
		s.buf = nb
	}
	return s.buf[len(s.buf):cap(s.buf)]
}

// added records n bytes read into space().
func (s *splitter) added(n int) { s.buf = s.buf[:len(s.buf)+n] }

// pending reports whether an unterminated text message is buffered.
func (s *splitter) pending() bool {
	b := s.buf[s.off:]
	return len(b) > 0 && b[0] != 0 && !s.discard
}

// next returns the next complete message. flush also returns a buffered
// unterminated text message. A non-nil error means the stream cannot be
// resynchronised (bad binary header) and the connection must be dropped.
func (s *splitter) next(flush bool) (message, bool, error) {
	for {
		b := s.buf[s.off:]
		if s.discard {
			i := indexEnd(b)
			if i < 0 {
				s.off = len(s.buf)
				return message{}, false, nil
			}
			s.off += i + 1
			s.discard = false
			continue
		}
		for len(b) > 0 && (b[0] == '\n' || b[0] == '\r') {
			b = b[1:]
			s.off++
		}
		if len(b) == 0 {
			return message{}, false, nil
		}
		if b[0] == 0 {
			if len(b) < frameHeaderSize {
				return message{}, false, nil
			}
			code, n, err := frameHeader(b[:frameHeaderSize], s.maxFrame)
			if err != nil {
				return message{}, false, err
			}
			if len(b) < frameHeaderSize+n {
				return message{}, false, nil
			}
			s.off += frameHeaderSize + n
			return message{binary: true, code: code, data: b[frameHeaderSize : frameHeaderSize+n]}, true, nil
		}
		lim := len(b)
		if lim > s.maxLine {
			lim = s.maxLine
		}
		if i := indexEnd(b[:lim]); i >= 0 {
			s.off += i + 1
			return message{data: b[:i]}, true, nil
		}
		if len(b) >= s.maxLine {
			s.off += s.maxLine
			s.discard = true
			return message{data: b[:s.maxLine], truncated: true}, true, nil
		}
		if flush {
			s.off = len(s.buf)
			return message{data: b}, true, nil
		}
		return message{}, false, nil
	}
}

// indexEnd finds the first text terminator (NUL or '\n').
func indexEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	j := bytes.IndexByte(b, 0)
	if i < 0 || (j >= 0 && j < i) {
		return j
	}
	return i
}
