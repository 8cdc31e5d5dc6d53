package logserver

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
)

// SourceKey is the slog attribute naming the source of a pantavisor
// message ("src"); without it the source is "pantavisor".
const SourceKey = "src"

// LevelFatal is the slog level mapped to FATAL.
const LevelFatal = slog.Level(12)

// slogLevel maps slog levels: >= LevelFatal FATAL, >= Error ERROR,
// >= Warn WARN, >= Info INFO, >= Debug DEBUG, below ALL.
func slogLevel(l slog.Level) Level {
	switch {
	case l >= LevelFatal:
		return Fatal
	case l >= slog.LevelError:
		return Error
	case l >= slog.LevelWarn:
		return Warn
	case l >= slog.LevelInfo:
		return Info
	case l >= slog.LevelDebug:
		return Debug
	}
	return All
}

// handler is the slog.Handler of a Server.
type handler struct {
	s      *Server
	src    string
	prefix string // group prefix "a.b."
	attrs  string // preformatted " k=v" pairs
}

// Handler returns a slog.Handler that logs records as platform
// "pantavisor", source = the "src" attribute, message = the record message
// followed by its other attributes as key=value. Records are stamped with
// the server's clock (Options.Now), like every other message.
func (s *Server) Handler() slog.Handler { return &handler{s: s, src: PlatformPantavisor} }

// Enabled reports whether a record at l would be kept (PV_LOG_LEVEL, or
// the update capture for ERROR and worse).
func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	lv := slogLevel(l)
	if lv <= h.s.level {
		return true
	}
	return lv <= Error && *h.s.updateRev.Load() != ""
}

// Handle writes r as a pantavisor Entry.
func (h *handler) Handle(_ context.Context, r slog.Record) error {
	src := h.src
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == SourceKey && h.prefix == "" {
			src = a.Value.String()
			return true
		}
		appendAttr(&b, h.prefix, a)
		return true
	})
	h.s.Write(Entry{Time: h.s.now(), Level: slogLevel(r.Level), Platform: PlatformPantavisor, Source: src, Msg: b.String()})
	return nil
}

// WithAttrs returns a handler that adds as (a "src" attr sets the source).
func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		if a.Key == SourceKey && h.prefix == "" {
			n.src = a.Value.String()
			continue
		}
		appendAttr(&b, h.prefix, a)
	}
	n.attrs = b.String()
	return &n
}

// WithGroup returns a handler that prefixes later keys with name + ".".
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}
