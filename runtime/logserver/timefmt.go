package logserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// goLayouts are the Go time constants accepted after "golang:".
var goLayouts = map[string]string{
	"Layout":      time.Layout,
	"ANSIC":       time.ANSIC,
	"UnixDate":    time.UnixDate,
	"RubyDate":    time.RubyDate,
	"RFC822":      time.RFC822,
	"RFC822Z":     time.RFC822Z,
	"RFC850":      time.RFC850,
	"RFC1123":     time.RFC1123,
	"RFC1123Z":    time.RFC1123Z,
	"RFC3339":     time.RFC3339,
	"RFC3339Nano": time.RFC3339Nano,
	"Kitchen":     time.Kitchen,
	"Stamp":       time.Stamp,
	"StampMilli":  time.StampMilli,
	"StampMicro":  time.StampMicro,
	"StampNano":   time.StampNano,
	"DateTime":    time.DateTime,
	"DateOnly":    time.DateOnly,
	"TimeOnly":    time.TimeOnly,
}

// ErrBadTimestampFormat is returned for an unknown timestamp format.
var ErrBadTimestampFormat = errors.New("bad timestamp format")

// TimeFormat renders the optional "ts" timestamp of a log line. The zero
// value renders nothing.
type TimeFormat struct {
	layout   string // Go layout
	strftime string // strftime format
	loc      *time.Location
}

// ParseTimeFormat parses a PV_LOG_*_TIMESTAMP_FORMAT value:
// "" (none), "golang:<constant>" (Layout, ANSIC, RubyDate, RFC822Z,
// RFC1123Z, … any Go time constant name) or "strftime:<format>".
func ParseTimeFormat(s string) (TimeFormat, error) {
	switch {
	case s == "":
		return TimeFormat{}, nil
	case strings.HasPrefix(s, "golang:"):
		name := strings.TrimPrefix(s, "golang:")
		l, ok := goLayouts[name]
		if !ok {
			return TimeFormat{}, fmt.Errorf("%w %q: unknown golang constant %q", ErrBadTimestampFormat, s, name)
		}
		return TimeFormat{layout: l}, nil
	case strings.HasPrefix(s, "strftime:"):
		f := strings.TrimPrefix(s, "strftime:")
		if f == "" {
			return TimeFormat{}, fmt.Errorf("%w %q: empty strftime format", ErrBadTimestampFormat, s)
		}
		return TimeFormat{strftime: f}, nil
	}
	return TimeFormat{}, fmt.Errorf("%w %q: want golang:<constant> or strftime:<format>", ErrBadTimestampFormat, s)
}

// IsZero reports whether no timestamp is rendered.
func (f TimeFormat) IsZero() bool { return f.layout == "" && f.strftime == "" }

// Append renders t.
func (f TimeFormat) Append(dst []byte, t time.Time) []byte {
	if f.loc != nil {
		t = t.In(f.loc)
	}
	if f.layout != "" {
		return t.AppendFormat(dst, f.layout)
	}
	if f.strftime != "" {
		return AppendStrftime(dst, f.strftime, t)
	}
	return dst
}

var (
	shortDays   = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	longDays    = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	shortMonths = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	longMonths  = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

func pad(dst []byte, v, width int, c byte) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		dst = append(dst, c)
	}
	return append(dst, s...)
}

// AppendStrftime renders t with a strftime(3) subset: %a %A %b %h %B %c %C
// %d %D %e %F %H %I %j %k %l %m %M %n %N (nanoseconds, GNU date) %p %R %s
// %S %t %T %u %w %y %Y %z %Z %%. Unknown conversions are copied verbatim.
func AppendStrftime(dst []byte, format string, t time.Time) []byte {
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			dst = append(dst, c)
			continue
		}
		i++
		switch format[i] {
		case 'a':
			dst = append(dst, shortDays[t.Weekday()]...)
		case 'A':
			dst = append(dst, longDays[t.Weekday()]...)
		case 'b', 'h':
			dst = append(dst, shortMonths[t.Month()-1]...)
		case 'B':
			dst = append(dst, longMonths[t.Month()-1]...)
		case 'c':
			dst = t.AppendFormat(dst, "Mon Jan _2 15:04:05 2006")
		case 'C':
			dst = pad(dst, t.Year()/100, 2, '0')
		case 'd':
			dst = pad(dst, t.Day(), 2, '0')
		case 'D':
			dst = t.AppendFormat(dst, "01/02/06")
		case 'e':
			dst = pad(dst, t.Day(), 2, ' ')
		case 'F':
			dst = t.AppendFormat(dst, "2006-01-02")
		case 'H':
			dst = pad(dst, t.Hour(), 2, '0')
		case 'I':
			dst = pad(dst, (t.Hour()+11)%12+1, 2, '0')
		case 'j':
			dst = pad(dst, t.YearDay(), 3, '0')
		case 'k':
			dst = pad(dst, t.Hour(), 2, ' ')
		case 'l':
			dst = pad(dst, (t.Hour()+11)%12+1, 2, ' ')
		case 'm':
			dst = pad(dst, int(t.Month()), 2, '0')
		case 'M':
			dst = pad(dst, t.Minute(), 2, '0')
		case 'n':
			dst = append(dst, '\n')
		case 'N':
			dst = pad(dst, t.Nanosecond(), 9, '0')
		case 'p':
			if t.Hour() < 12 {
				dst = append(dst, "AM"...)
			} else {
				dst = append(dst, "PM"...)
			}
		case 'R':
			dst = t.AppendFormat(dst, "15:04")
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'S':
			dst = pad(dst, t.Second(), 2, '0')
		case 't':
			dst = append(dst, '\t')
		case 'T':
			dst = t.AppendFormat(dst, "15:04:05")
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			dst = strconv.AppendInt(dst, int64(wd), 10)
		case 'w':
			dst = strconv.AppendInt(dst, int64(t.Weekday()), 10)
		case 'y':
			dst = pad(dst, t.Year()%100, 2, '0')
		case 'Y':
			dst = strconv.AppendInt(dst, int64(t.Year()), 10)
		case 'z':
			dst = t.AppendFormat(dst, "-0700")
		case 'Z':
			dst = t.AppendFormat(dst, "MST")
		case '%':
			dst = append(dst, '%')
		default:
			dst = append(dst, '%', format[i])
		}
	}
	return dst
}
