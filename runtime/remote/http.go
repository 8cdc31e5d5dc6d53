package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// maxResponse bounds what the device reads from the Hub.
const maxResponse = 8 << 20

// HTTPError is a Hub answer other than 2xx.
type HTTPError struct {
	Method, Path string
	Status       int
	Msg          string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Msg)
}

// call sends a JSON request and decodes a JSON answer into out (when not
// nil). body may be json.RawMessage. A 401 drops the token so the next
// step logs in again.
func (c *Client) call(ctx context.Context, method, p string, hdr http.Header, body, out any, auth bool) error {
	_, b, err := c.roundTrip(ctx, method, p, hdr, body, auth)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, p, err)
	}
	return nil
}

// roundTrip sends a request and returns a 2xx answer's headers and body;
// other statuses are an *HTTPError. A request that got no answer at all
// (connection refused or dropped, timeout) is sent again up to
// PH_LIBEVENT_HTTP_RETRIES times, as libevent's connection retries.
func (c *Client) roundTrip(ctx context.Context, method, p string, hdr http.Header, body any, auth bool) (http.Header, []byte, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, nil, err
		}
	}
	retries := max(c.o.Config.Int(config.HubLibeventHTTPRetries), 0)
	for try := 0; ; try++ {
		h, out, err := c.roundTrip1(ctx, method, p, hdr, b, auth)
		var ne noAnswer
		if !errors.As(err, &ne) || try >= retries || ctx.Err() != nil {
			return h, out, err
		}
		c.o.Log.Debug("remote: no answer, retrying", "method", method, "path", p, "err", err)
	}
}

// noAnswer is a request the Hub did not answer.
type noAnswer struct{ error }

func (e noAnswer) Unwrap() error { return e.error }

func (c *Client) roundTrip1(ctx context.Context, method, p string, hdr http.Header, body []byte, auth bool) (http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL()+p, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	start := time.Now()
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		c.lastFail.Store(time.Now().UnixNano())
		c.reqFails.Add(1)
		if c.traceHTTP() {
			c.o.Log.Info("remote http", "method", method, "path", p, "err", err, "took", time.Since(start))
		}
		return nil, nil, noAnswer{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil || resp.StatusCode >= 500 {
		c.lastFail.Store(time.Now().UnixNano())
		c.reqFails.Add(1)
	} else {
		c.lastOK.Store(time.Now().UnixNano())
		c.reqFails.Store(0)
	}
	if c.traceHTTP() {
		c.o.Log.Info("remote http", "method", method, "path", p, "status", resp.StatusCode, "bytes", len(b), "took", time.Since(start))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, p, err)
	}
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusUnauthorized && auth {
			c.token, c.tokenOwner = "", ""
		}
		var e struct {
			Error string `json:"Error"`
		}
		json.Unmarshal(b, &e)
		return nil, nil, &HTTPError{Method: method, Path: p, Status: resp.StatusCode, Msg: e.Error}
	}
	return resp.Header, b, nil
}

// traceHTTP reports whether every Hub request is logged: upstream's
// HTTP stack (libthttp over libevent) logs its requests at
// PV_LIBTHHTTP_LOG_LEVEL 4 (DEBUG) and above, or in PV_LIBEVENT_DEBUG_MODE.
// Read per request, so a run-time change applies at once.
func (c *Client) traceHTTP() bool {
	return c.o.Config.Int(config.LibThHTTPLogLevel) >= 4 || c.o.Config.Bool(config.LibeventDebugMode)
}

// tokenOwner reads the owner claim of a JWT.
func tokenOwner(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("login: the hub sent no token")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("login: bad token: %w", err)
	}
	var cl struct {
		Owner string `json:"owner"`
	}
	if err := json.Unmarshal(b, &cl); err != nil {
		return "", fmt.Errorf("login: bad token: %w", err)
	}
	return cl.Owner, nil
}

// objectRef is one object a state names.
type objectRef struct {
	Name, SHA string
}

// stateObjects lists the objects of a pvr state: string values that are
// sha256 sums (JSON documents are objects, not strings).
func stateObjects(state json.RawMessage) ([]objectRef, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(state, &m); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var refs []objectRef
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) != nil {
			continue
		}
		if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
			name := path.Base(k)
			if name == "/" || name == "." {
				name = s // a degenerate key still uploads, named by content
			}
			refs = append(refs, objectRef{Name: name, SHA: s})
		}
	}
	return refs, nil
}

// postObjects uploads the objects the Hub does not have (409 = has).
func (c *Client) postObjects(ctx context.Context, rev Revision) error {
	refs, err := stateObjects(rev.State)
	if err != nil {
		return err
	}
	for _, o := range refs {
		f, err := rev.Open(o.SHA)
		if err != nil {
			return fmt.Errorf("object %s: %w", o.Name, err)
		}
		err = c.postObject(ctx, o, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) postObject(ctx context.Context, o objectRef, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var out struct {
		PutURL string `json:"signed-puturl"`
	}
	body := map[string]string{"objectname": o.Name, "sha256sum": o.SHA, "size": strconv.FormatInt(fi.Size(), 10),
		"mime-type": "application/octet-stream"}
	err = c.call(ctx, http.MethodPost, "/objects/", nil, body, &out, true)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusConflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("object %s: %w", o.Name, err)
	}
	if out.PutURL == "" {
		return fmt.Errorf("object %s: no signed-puturl", o.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, out.PutURL, f)
	if err != nil {
		return err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("User-Agent", c.o.UserAgent)
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("upload %s: %w", o.Name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload %s: %s", o.Name, resp.Status)
	}
	return nil
}
