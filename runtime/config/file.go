package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxLineLen bounds a configuration line; longer lines are rejected.
const MaxLineLen = 16 << 10

// ErrBadLine is wrapped by the errors ParseFile reports for lines it skips.
var ErrBadLine = errors.New("bad config line")

// Pair is one key=value line of a configuration file.
type Pair struct {
	Line  int // 1-based line number
	Key   string
	Value string
}

// LineError describes a skipped line.
type LineError struct {
	Line   int
	Reason string
}

// Error renders "line <n>: <reason>".
func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Unwrap makes errors.Is(err, ErrBadLine) true.
func (e *LineError) Unwrap() error { return ErrBadLine }

// ParseFile splits configuration text into key=value pairs (spec §8): each
// line is split at its first '='; nothing is trimmed and there is no
// comment syntax. The line terminator ("\n" or "\r\n") is removed; a last
// line without terminator loses one trailing whitespace character instead.
// Empty lines are skipped silently; lines without '=', with an empty key,
// with NUL bytes or invalid UTF-8, or longer than MaxLineLen are skipped
// and reported. Later duplicates are returned after earlier ones, so
// applying the pairs in order makes the last one win.
func ParseFile(r io.Reader) ([]Pair, []error) {
	var (
		pairs []Pair
		errs  []error
	)
	br := bufio.NewReaderSize(r, 4096)
	for n := 1; ; n++ {
		line, tooLong, eof, err := readLine(br)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			return pairs, errs
		}
		if eof && line == nil && !tooLong {
			return pairs, errs
		}
		if tooLong {
			errs = append(errs, &LineError{n, fmt.Sprintf("longer than %d bytes", MaxLineLen)})
		} else if p, lerr := parseLine(n, line); lerr != nil {
			errs = append(errs, lerr)
		} else if p != nil {
			pairs = append(pairs, *p)
		}
		if eof {
			return pairs, errs
		}
	}
}

// readLine returns the next line without its terminator. tooLong reports a
// line over MaxLineLen (its bytes are consumed, not returned); eof reports
// that the input ended (line is then the unterminated last line or nil).
func readLine(br *bufio.Reader) (line []byte, tooLong, eof bool, err error) {
	var buf []byte
	for {
		chunk, rerr := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxLineLen+2 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case rerr == nil:
			if tooLong {
				return nil, true, false, nil
			}
			buf = buf[:len(buf)-1]
			buf = bytes.TrimSuffix(buf, []byte{'\r'})
			if len(buf) > MaxLineLen {
				return nil, true, false, nil
			}
			return buf, false, false, nil
		case errors.Is(rerr, bufio.ErrBufferFull):
			continue
		case errors.Is(rerr, io.EOF):
			if tooLong {
				return nil, true, true, nil
			}
			if len(buf) == 0 {
				return nil, false, true, nil
			}
			if c := buf[len(buf)-1]; c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' {
				buf = buf[:len(buf)-1]
			}
			return buf, false, true, nil
		default:
			return nil, false, true, rerr
		}
	}
}

func parseLine(n int, line []byte) (*Pair, error) {
	if len(line) == 0 {
		return nil, nil
	}
	if bytes.IndexByte(line, 0) >= 0 {
		return nil, &LineError{n, "contains a NUL byte"}
	}
	if !utf8.Valid(line) {
		return nil, &LineError{n, "is not valid UTF-8"}
	}
	i := bytes.IndexByte(line, '=')
	if i < 0 {
		return nil, &LineError{n, "missing '='"}
	}
	if i == 0 {
		return nil, &LineError{n, "empty key"}
	}
	return &Pair{Line: n, Key: string(line[:i]), Value: string(line[i+1:])}, nil
}
