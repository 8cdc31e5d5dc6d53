package remote

import (
	"context"
	"fmt"
	"net/http"
)

// LogEntry is one log line as the Hub's POST /logs/ takes it.
type LogEntry struct {
	Src   string `json:"src"`
	Msg   string `json:"msg"`
	Lvl   string `json:"lvl"`
	Tsec  int64  `json:"tsec"`
	Tnano int64  `json:"tnano"`
	Plat  string `json:"plat"`
	Rev   string `json:"rev"`
}

// A batch is at most maxLogBatch entries or about maxLogBytes of body;
// one push sends at most maxLogBatches of them, so a chatty device costs
// a few requests per PollInterval, never a stream.
const (
	maxLogBatch   = 500
	maxLogBytes   = 256 << 10
	maxLogBatches = 8
)

// pushLogs posts the backlog (Options.Logs) in batches. A batch the Hub
// did not take is kept and sent first next time, so an outage loses
// nothing but what overflowed the daemon's bounded queue meanwhile.
func (c *Client) pushLogs(ctx context.Context) error {
	for range maxLogBatches {
		size := 0
		for _, e := range c.logBatch {
			size += len(e.Msg) + len(e.Src) + 96
		}
	fill:
		for len(c.logBatch) < maxLogBatch && size < maxLogBytes {
			select {
			case e := <-c.o.Logs:
				if e.Msg == "" {
					continue // the Hub requires a message
				}
				if e.Src == "" {
					e.Src = e.Plat
				}
				c.logBatch = append(c.logBatch, e)
				size += len(e.Msg) + len(e.Src) + 96
			default:
				break fill
			}
		}
		if len(c.logBatch) == 0 {
			return nil
		}
		if err := c.ensureLogin(ctx); err != nil {
			return err
		}
		if err := c.call(ctx, http.MethodPost, "/logs/", nil, c.logBatch, nil, true); err != nil {
			return fmt.Errorf("push %d log lines: %w", len(c.logBatch), err)
		}
		c.logsPushed.Add(int64(len(c.logBatch)))
		c.logBatch = nil
	}
	return nil
}

// LogsPushed is how many log lines the Hub took so far (any goroutine).
func (c *Client) LogsPushed() int64 { return c.logsPushed.Load() }
