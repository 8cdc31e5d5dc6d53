package pantavisor

import (
	"path/filepath"
	"slices"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/logserver"
	"github.com/pantavisor/pantavisor-go/runtime/remote"
)

// logBacklog bounds the log lines waiting for the Hub (PV_LOG_PUSH): a
// Hub outage keeps logBacklog lines, newer ones are dropped (and counted)
// until the client drains the queue. With lines cut at logPushLine bytes
// the backlog holds at most about 2 MiB.
const (
	logBacklog  = 2048
	logPushLine = 1024
)

// tapLog queues a kept log line for the Hub client while one runs; it
// never blocks.
func (d *Daemon) tapLog(e logserver.Entry, rev string) {
	if !d.logPushOn.Load() {
		return
	}
	if len(e.Msg) > logPushLine {
		e.Msg = e.Msg[:logPushLine]
	}
	sec, nano := e.Time.Unix(), int64(e.Time.Nanosecond())
	select {
	case d.logQueue <- remote.LogEntry{Src: e.Source, Msg: e.Msg, Lvl: e.Level.String(), Tsec: sec, Tnano: nano,
		Plat: e.Platform, Rev: rev}:
	default:
		d.logsDropped.Add(1)
	}
}

// logOptions builds the log server's options from the PV_LOG_* keys of
// the configuration. A value the log server cannot use is reported and
// left at its default, so a typo never costs the device its logs.
func (d *Daemon) logOptions() logserver.Options {
	o := logserver.Options{RunDir: d.runDir, LogDir: d.logDir,
		TrailsDir: filepath.Join(d.root, "trails"), Rev: d.rev,
		Level:            d.conf.Int(config.LogLevel),
		HysteresisFactor: d.conf.Int(config.LogHysteresisFactor),
		RotateFactor:     d.conf.Int(config.LogRotateFactor),
		Absolute:         d.conf.Get(config.LogTimestamp) == "absolute",
		Log:              d.log}
	if d.logQueue == nil {
		d.logQueue = make(chan remote.LogEntry, logBacklog)
	}
	o.Tap = d.tapLog
	// PV_LOG_BUF_NITEMS sizes the outputs' queues when set; the built-in
	// default is the log server's (DefaultQueueLen), not upstream's 128
	// records, which a burst of container output overflows.
	if d.conf.Source(config.LogBufNItems) != config.Default {
		o.QueueLen = d.conf.Int(config.LogBufNItems)
	}
	if v := d.conf.Get(config.LogServerOutputs); v != "" {
		outs, err := logserver.ParseOutputs(v)
		if err != nil {
			d.log.Warn("config: PV_LOG_SERVER_OUTPUTS ignored", "value", v, "err", err)
		} else {
			o.Outputs = outs
		}
	}
	// PV_LOG_STDOUT (upstream's log.stdout) adds the stdout output to the
	// configured ones (the console of an image); it prints every record,
	// so the partial stdout outputs go (each record printed once).
	if d.conf.Bool(config.LogStdout) {
		if o.Outputs == nil {
			o.Outputs = []string{logserver.OutFiletree}
		}
		o.Outputs = slices.DeleteFunc(o.Outputs, func(s string) bool {
			return s == logserver.OutStdout || s == logserver.OutStdoutPantavisor || s == logserver.OutStdoutContainers
		})
		o.Outputs = append(o.Outputs, logserver.OutStdout)
	}
	if v := d.conf.Get(config.LogDirMaxSize); v != "" && v != "0" {
		n, err := logserver.ResolveDirMaxSize(v, d.logDir)
		if err != nil {
			d.log.Warn("config: PV_LOG_DIR_MAXSIZE ignored", "value", v, "err", err)
		} else {
			o.MaxSize = n
		}
	}
	for out, key := range map[string]config.Key{
		"filetree":   config.LogFiletreeTimestampFormat,
		"singlefile": config.LogSinglefileTimestampFormat,
		"stdout":     config.LogStdoutTimestampFormat,
	} {
		v := d.conf.Get(key)
		if v == "" {
			continue
		}
		if _, err := logserver.ParseTimeFormat(v); err != nil {
			d.log.Warn("config: "+key.Name()+" ignored", "value", v, "err", err)
			continue
		}
		if o.TimestampFormats == nil {
			o.TimestampFormats = map[string]string{}
		}
		o.TimestampFormats[out] = v
	}
	return o
}

// logsToStdout reports whether the log server prints pantavisor's own
// records on stdout (outputs "stdout" or "stdout.pantavisor", or
// PV_LOG_STDOUT).
func (d *Daemon) logsToStdout() bool {
	if d.conf.Bool(config.LogStdout) {
		return true
	}
	outs, err := logserver.ParseOutputs(d.conf.Get(config.LogServerOutputs))
	return err == nil && (slices.Contains(outs, logserver.OutStdout) || slices.Contains(outs, logserver.OutStdoutPantavisor))
}
