// Package remote is the device's Pantacor Hub client: it owns the remote
// state machine (register, wait for the claim, log in, post the factory
// revision, stay online). One goroutine, Run, owns all of its state;
// others only read the published State.
package remote

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
	"github.com/pantavisor/pantavisor-go/runtime/metadata"
	"github.com/pantavisor/pantavisor-go/runtime/progress"
)

// State is where the client is, published as devmeta pantahub.state.
type State string

// The states, named as pantavisor names them in pantahub.state.
const (
	StateInit     State = "init"
	StateRegister State = "register"
	StateClaim    State = "claim"
	StateSync     State = "sync"
	StateIdle     State = "idle"
)

// Publisher takes device metadata (the daemon's devmeta store).
type Publisher interface {
	Publish(kvs []metadata.KV) error
}

// Revision is the factory revision the device posts on first boot.
type Revision struct {
	State json.RawMessage // the state JSON (.pvr/json)
	// Open opens one of its objects by sha256.
	Open func(sha string) (*os.File, error)
}

// Options configure a Client.
type Options struct {
	Config     *config.Config // PH_CREDS_*, PH_FACTORY_AUTOTOK
	ConfigPath string         // pantahub.config, rewritten with the credentials
	RunDir     string         // $RUN: challenge and device-id
	Meta       Publisher
	// Factory returns the running revision for the first-boot trail.
	Factory func() (Revision, error)
	// HTTP is the client (default: RequestTimeout's timeout).
	HTTP *http.Client
	// BaseURL overrides https://<creds.host>:<creds.port>.
	BaseURL   string
	UserAgent string
	// RetryMin and RetryMax bound the jittered exponential backoff of
	// failed calls and claim polling (defaults 2s and 5min).
	RetryMin, RetryMax time.Duration
	// DeviceMeta returns the local device metadata to push to the Hub
	// once idle; nil pushes nothing.
	DeviceMeta func() []metadata.KV
	// UserMeta takes the Hub's user metadata (the whole set, which
	// replaces the local one) when it changed; nil pulls nothing.
	UserMeta func(kvs []metadata.KV) error
	// PollInterval is how often an unclaimed device asks whether it was
	// claimed (PH_UPDATER_INTERVAL; default 60s, as upstream).
	PollInterval time.Duration
	// DevMetaInterval coalesces device-metadata changes: a change is
	// pushed at most this often (PH_METADATA_DEVMETA_INTERVAL); 0 is
	// PollInterval.
	DevMetaInterval time.Duration
	// UserMetaInterval is how often user metadata is pulled
	// (PH_METADATA_USRMETA_INTERVAL); 0 is PollInterval.
	UserMetaInterval time.Duration
	// IdleInterval is how often an idle device refreshes its token (10min).
	IdleInterval time.Duration
	// Updates, when set, lets the device take remote updates: the idle
	// client polls the Hub's steps every PollInterval.
	Updates Updates
	// UpdateRetries is how many failed download tries an update may take
	// before it is WONTGO "Max download update retries reached"
	// (PV_REVISION_RETRIES); 0 is unlimited.
	UpdateRetries int
	// UpdateRetryDelay is the wait before a failed download is tried again
	// (PV_REVISION_RETRIES_TIMEOUT); 0 is the backoff of other calls.
	UpdateRetryDelay time.Duration
	// Logs is the log backlog to push to the Hub (POST /logs/): a
	// buffered channel the daemon fills without blocking, so its capacity
	// bounds what an outage may hold; nil pushes nothing. PushLogs, when
	// set, is asked before each push (PV_LOG_PUSH, pantahub.log.push).
	Logs     <-chan LogEntry
	PushLogs func() bool
	Log      *slog.Logger
}

// ErrCredsType: PH_CREDS_TYPE names credentials this build cannot use
// (only builtin; there is no TPM support).
var ErrCredsType = errors.New("unsupported hub credentials type, only builtin is supported (no TPM support)")

// Client runs the remote state machine.
type Client struct {
	o     Options
	state atomic.Value // State

	// Owned by Run.
	token      string
	tokenOwner string // the owner frozen into token
	id, prn    string
	secret     string
	unsaved    bool // registered, credentials not yet in pantahub.config
	failures   int
	pushed     map[string]string // device-meta the Hub has
	userETag   string            // of the user-meta last applied
	stepsETag  string            // of the last steps list with nothing to take
	upd        *hubUpdate        // the remote update in flight
	finished   map[string]bool   // revisions ended in this run
	logBatch   []LogEntry        // the log batch the Hub has not taken yet

	metaChanged chan struct{} // DeviceMetaChanged -> idle

	// When the Hub last answered (any status below 500) and last failed
	// (no answer, or a 5xx), in Unix nanoseconds; read by Contact.
	lastOK, lastFail atomic.Int64
	reqFails         atomic.Int64 // requests failed in a row
	logsPushed       atomic.Int64
}

// Contact returns when the Hub last answered and when a request to it
// last failed (zero times for never). Any goroutine: the daemon's
// network rollback reads it.
func (c *Client) Contact() (ok, failed time.Time) {
	at := func(n int64) time.Time {
		if n == 0 {
			return time.Time{}
		}
		return time.Unix(0, n)
	}
	return at(c.lastOK.Load()), at(c.lastFail.Load())
}

// New makes a Client; Run starts it.
func New(o Options) *Client {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: RequestTimeout(o.Config)}
	}
	if o.UserAgent == "" {
		o.UserAgent = "Pantavisor/2 (go)"
	}
	if o.RetryMin == 0 {
		o.RetryMin = 2 * time.Second
	}
	if o.RetryMax == 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 60 * time.Second
	}
	if o.DevMetaInterval <= 0 {
		o.DevMetaInterval = o.PollInterval
	}
	if o.UserMetaInterval <= 0 {
		o.UserMetaInterval = o.PollInterval
	}
	if o.IdleInterval == 0 {
		o.IdleInterval = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Client{o: o, metaChanged: make(chan struct{}, 1), finished: map[string]bool{}}
	c.state.Store(StateInit)
	return c
}

// RequestTimeout bounds one Hub request (PH_LIBEVENT_HTTP_TIMEOUT, 60s by
// default); object downloads have their own stall watchdog instead.
func RequestTimeout(conf *config.Config) time.Duration {
	if conf == nil || conf.Duration(config.HubLibeventHTTPTimeout) <= 0 {
		return 60 * time.Second
	}
	return conf.Duration(config.HubLibeventHTTPTimeout)
}

// State returns the current state.
func (c *Client) State() State { return c.state.Load().(State) }

// baseURL is where the Hub is: pantavisor always speaks TLS to it.
func (c *Client) baseURL() string {
	if c.o.BaseURL != "" {
		return c.o.BaseURL
	}
	port := c.o.Config.Get(config.HubCredsPort)
	return "https://" + net.JoinHostPort(c.o.Config.Get(config.HubCredsHost), port)
}

func (c *Client) setState(s State) {
	c.state.Store(s)
	c.publish(metadata.KV{Key: "pantahub.state", Value: []byte(s)})
}

func (c *Client) publish(kvs ...metadata.KV) {
	if c.o.Meta == nil {
		return
	}
	if err := c.o.Meta.Publish(kvs); err != nil {
		c.o.Log.Warn("remote devmeta", "err", err)
	}
}

func boolMeta(key string, v bool) metadata.KV {
	if v {
		return metadata.KV{Key: key, Value: []byte("1")}
	}
	return metadata.KV{Key: key, Value: []byte("0")}
}

// Run drives the machine until ctx ends: every step is retried with
// backoff until it succeeds, so a Hub outage costs a few requests, not a
// storm. It returns ctx's error, or at once ErrCredsType.
func (c *Client) Run(ctx context.Context) error {
	if t := c.o.Config.Get(config.HubCredsType); t != "builtin" {
		// Only the secret of pantahub.config authenticates this build: a
		// device meant to log in with its TPM stays offline and says why.
		err := fmt.Errorf("%w: PH_CREDS_TYPE=%q", ErrCredsType, t)
		c.o.Log.Error("remote: hub client not started", "err", err)
		c.publish(boolMeta("pantahub.online", false))
		return err
	}
	c.publish(metadata.KV{Key: "pantahub.address", Value: []byte(c.baseURL())}, boolMeta("pantahub.online", false))
	steps := []struct {
		state State
		do    func(context.Context) (done bool, err error)
	}{
		{StateRegister, c.register},
		{StateClaim, c.awaitClaim},
		{StateSync, c.sync},
	}
	for _, st := range steps {
		c.setState(st.state)
		c.failures = 0
		for {
			done, err := st.do(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == nil && done {
				break
			}
			if err != nil {
				c.o.Log.Warn("remote", "state", st.state, "err", err)
				c.offline()
			}
			if err := c.sleep(ctx, c.retryDelay(err)); err != nil {
				return err
			}
		}
	}
	c.setState(StateIdle)
	return c.idle(ctx)
}

// idle keeps the token fresh and pushes device metadata when it changed
// (a change is coalesced for DevMetaInterval, so a burst is one request;
// a failed push is retried with backoff).
func (c *Client) idle(ctx context.Context) error {
	refresh := time.NewTimer(jitter(c.o.IdleInterval))
	defer refresh.Stop()
	var poll <-chan time.Time // user-meta, every UserMetaInterval
	if c.o.UserMeta != nil {
		poll = time.After(0)
	}
	var updates <-chan time.Time // steps, every PollInterval
	if c.o.Updates != nil {
		updates = time.After(0)
	}
	var logs <-chan time.Time // log push, every PollInterval
	if c.o.Logs != nil {
		logs = time.After(0)
	}
	logFailures := 0
	pending := c.o.DeviceMeta != nil // push once on reaching idle
	var metaDue <-chan time.Time     // a device-meta change waits for it
	c.failures = 0
	updFailures := 0
	for {
		var retry <-chan time.Time
		if pending {
			if err := c.pushMeta(ctx); err != nil {
				c.o.Log.Warn("remote device-meta", "err", err)
				retry = time.After(c.retryDelay(err))
			} else {
				pending, c.failures = false, 0
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry:
		case <-c.metaChanged:
			// Coalesced without blocking the other duties.
			if c.o.DeviceMeta != nil && metaDue == nil {
				metaDue = time.After(jitter(c.o.DevMetaInterval))
			}
		case <-metaDue:
			metaDue, pending = nil, true
		case <-poll:
			d := jitter(c.o.UserMetaInterval)
			if err := c.pullUserMeta(ctx); err != nil {
				c.o.Log.Warn("remote user-meta", "err", err)
				d = c.retryDelay(err)
			}
			poll = time.After(d)
		case ev := <-c.dlEvents():
			more, err := c.downloadEvent(ctx, ev)
			switch {
			case err != nil:
				c.o.Log.Warn("remote download", "err", err)
				updFailures++
				updates = time.After(c.updateRetry(ctx, err, updFailures))
			case more:
				updFailures = 0
				updates = time.After(0)
			}
		case <-updates:
			more, err := c.pollUpdate(ctx)
			d := jitter(c.o.PollInterval)
			switch {
			case err != nil:
				c.o.Log.Warn("remote update", "err", err)
				updFailures++
				d = c.updateRetry(ctx, err, updFailures)
			case more:
				updFailures, d = 0, 0
			default:
				updFailures = 0
			}
			updates = time.After(d)
		case <-logs:
			d := jitter(c.o.PollInterval)
			if c.o.PushLogs == nil || c.o.PushLogs() {
				if err := c.pushLogs(ctx); err != nil {
					logFailures++
					d = backoff(c.o.RetryMin, c.o.RetryMax, logFailures)
				} else {
					logFailures = 0
				}
			}
			logs = time.After(d)
		case <-refresh.C:
			err := c.refresh(ctx)
			if err == nil {
				c.publish(boolMeta("pantahub.online", true))
			} else {
				c.offline()
			}
			if err != nil {
				c.o.Log.Warn("remote refresh", "err", err)
				refresh.Reset(c.backoff())
			} else {
				refresh.Reset(jitter(c.o.IdleInterval))
			}
		}
	}
}

// offline publishes pantahub.online=0 after a failed step, unless no
// more than PH_ONLINE_REQUEST_THRESHOLD requests in a row failed (a flaky
// link is not an outage); 0 tolerates none, as upstream.
func (c *Client) offline() {
	if n := c.o.Config.Int(config.HubOnlineRequestThreshold); n > 0 && c.reqFails.Load() <= int64(n) {
		return
	}
	c.publish(boolMeta("pantahub.online", false))
}

// updateRetry returns the wait after a failed update step. A failed
// download try of the update in flight counts against UpdateRetries (the
// update ends WONTGO past them) and waits UpdateRetryDelay; anything
// else backs off.
func (c *Client) updateRetry(ctx context.Context, err error, failures int) time.Duration {
	u := c.upd
	if u == nil || u.phase != phaseDownload {
		return backoff(c.o.RetryMin, c.o.RetryMax, failures)
	}
	u.tries++
	if c.o.UpdateRetries > 0 && u.tries > c.o.UpdateRetries {
		if ferr := c.finish(ctx, progress.New(progress.Wontgo, progress.MsgMaxDownloadRetries), err); ferr != nil {
			c.o.Log.Warn("remote update", "err", ferr)
			return backoff(c.o.RetryMin, c.o.RetryMax, failures)
		}
		return 0
	}
	if c.o.UpdateRetryDelay > 0 {
		return c.o.UpdateRetryDelay
	}
	return backoff(c.o.RetryMin, c.o.RetryMax, failures)
}

// DeviceMetaChanged tells the client the local device metadata changed;
// it never blocks (the daemon calls it from the store's change hook).
func (c *Client) DeviceMetaChanged() {
	select {
	case c.metaChanged <- struct{}{}:
	default:
	}
}

// pullUserMeta reads the Hub's user metadata, conditionally (an
// unchanged set is a 304 with no body), and hands a changed set over.
// Values that are not JSON strings are passed as their JSON text.
func (c *Client) pullUserMeta(ctx context.Context) error {
	if err := c.ensureLogin(ctx); err != nil {
		return err
	}
	hdr := http.Header{}
	if c.userETag != "" {
		hdr.Set("If-None-Match", c.userETag)
	}
	h, b, err := c.roundTrip(ctx, http.MethodGet, "/devices/"+c.id+"/user-meta", hdr, nil, true)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotModified {
		return nil
	}
	if err != nil {
		return fmt.Errorf("user-meta: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("user-meta: %w", err)
	}
	kvs := make([]metadata.KV, 0, len(m))
	for k, raw := range m {
		v := []byte(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			v = []byte(s)
		}
		kvs = append(kvs, metadata.KV{Key: k, Value: v})
	}
	slices.SortFunc(kvs, func(a, b metadata.KV) int { return strings.Compare(a.Key, b.Key) })
	if err := c.o.UserMeta(kvs); err != nil {
		return fmt.Errorf("user-meta: apply: %w", err)
	}
	c.userETag = h.Get("ETag")
	return nil
}

// pushMeta sends the device metadata (PUT, the whole set, as pantavisor
// does) unless it is what the Hub already has.
func (c *Client) pushMeta(ctx context.Context) error {
	m := map[string]string{}
	for _, kv := range c.o.DeviceMeta() {
		m[kv.Key] = string(kv.Value)
	}
	if c.pushed != nil && maps.Equal(m, c.pushed) {
		return nil
	}
	if err := c.ensureLogin(ctx); err != nil {
		return err
	}
	if err := c.call(ctx, http.MethodPut, "/devices/"+c.id+"/device-meta", nil, m, nil, true); err != nil {
		return fmt.Errorf("push device-meta: %w", err)
	}
	c.pushed = m
	return nil
}

// retryDelay is the wait before the next try of a step: after an error,
// the backoff (RetryMin doubled per consecutive failure up to RetryMax);
// when the step is only not done yet (an unclaimed device), PollInterval.
// Both are jittered.
func (c *Client) retryDelay(err error) time.Duration {
	if err == nil {
		c.failures = 0
		return jitter(c.o.PollInterval)
	}
	c.failures++
	return c.backoff()
}

// backoff is RetryMin doubled per failure up to RetryMax, jittered.
func (c *Client) backoff() time.Duration {
	return backoff(c.o.RetryMin, c.o.RetryMax, c.failures)
}

// backoff is lo doubled per failure up to hi, jittered.
func backoff(lo, hi time.Duration, failures int) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	return jitter(min(d, hi))
}

// jitter spreads d over [d/2, d], so devices that lost the Hub together
// do not come back together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// register loads the credentials or, without them, registers the device
// (with the factory auto-token if set) and saves them to pantahub.config
// before going on, so a reboot keeps the same device. A failed save is
// retried without registering again.
func (c *Client) register(ctx context.Context) (bool, error) {
	conf := c.o.Config
	if c.id == "" {
		c.id, c.prn, c.secret = conf.Get(config.HubCredsID), conf.Get(config.HubCredsPRN), conf.Get(config.HubCredsSecret)
	}
	if c.id == "" || c.prn == "" {
		if err := c.registerNew(ctx); err != nil {
			return false, err
		}
	}
	if c.unsaved && c.o.ConfigPath != "" {
		if err := os.MkdirAll(filepath.Dir(c.o.ConfigPath), 0o755); err != nil {
			return false, fmt.Errorf("save credentials: %w", err)
		}
		if err := conf.WritePHConfig(c.o.ConfigPath); err != nil {
			return false, fmt.Errorf("save credentials: %w", err)
		}
	}
	c.unsaved = false
	return true, c.writeRun("device-id", c.id)
}

func (c *Client) registerNew(ctx context.Context) error {
	conf := c.o.Config
	if c.secret == "" {
		b := make([]byte, 16)
		crand.Read(b)
		c.secret = hex.EncodeToString(b)
	}
	hdr := http.Header{}
	if tok := conf.Get(config.HubFactoryAutoTok); tok != "" {
		hdr.Set("Pantahub-Devices-Auto-Token-V1", tok)
	}
	var dev struct {
		ID        string `json:"id"`
		PRN       string `json:"prn"`
		Secret    string `json:"secret"`
		Challenge string `json:"challenge"`
		Owner     string `json:"owner"`
	}
	if err := c.call(ctx, http.MethodPost, "/devices/", hdr, map[string]string{"secret": c.secret}, &dev, false); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if dev.ID == "" || dev.PRN == "" {
		return errors.New("register: the hub sent no device id")
	}
	if dev.Secret != "" {
		c.secret = dev.Secret
	}
	c.id, c.prn, c.unsaved = dev.ID, dev.PRN, true
	for _, kv := range [][2]string{{config.HubCredsID.Name(), c.id}, {config.HubCredsPRN.Name(), c.prn}, {config.HubCredsSecret.Name(), c.secret}} {
		if err := conf.Set(kv[0], kv[1], config.PHConf); err != nil {
			return fmt.Errorf("register: %w", err)
		}
	}
	c.o.Log.Info("remote registered", "id", c.id, "claimed", dev.Owner != "")
	return c.writeRun("challenge", dev.Challenge)
}

func (c *Client) writeRun(name, v string) error {
	if c.o.RunDir == "" {
		return nil
	}
	if err := atomicfile.Write(filepath.Join(c.o.RunDir, name), []byte(v), 0o444); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// awaitClaim logs in and reads the device until it has an owner, then
// logs in again if the token predates the claim (the owner is frozen
// into the token, and a trail posted with it would belong to nobody).
func (c *Client) awaitClaim(ctx context.Context) (bool, error) {
	if err := c.ensureLogin(ctx); err != nil {
		return false, err
	}
	var dev struct {
		Owner     string `json:"owner"`
		Challenge string `json:"challenge"`
	}
	if err := c.call(ctx, http.MethodGet, "/devices/"+c.id, nil, nil, &dev, true); err != nil {
		return false, fmt.Errorf("device: %w", err)
	}
	c.publish(boolMeta("pantahub.online", true))
	claimed := dev.Owner != ""
	c.publish(boolMeta("pantahub.claimed", claimed), boolMeta("pantavisor.claimed", claimed))
	if !claimed {
		if dev.Challenge != "" {
			if err := c.writeRun("challenge", dev.Challenge); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if err := c.writeRun("challenge", ""); err != nil {
		return false, err
	}
	if c.tokenOwner == "" {
		if err := c.login(ctx); err != nil {
			return false, err
		}
	}
	return true, nil
}

// ensureLogin logs in when there is no token (first call, or a 401 dropped
// it).
func (c *Client) ensureLogin(ctx context.Context) error {
	if c.token != "" {
		return nil
	}
	return c.login(ctx)
}

func (c *Client) login(ctx context.Context) error {
	var out struct {
		Token string `json:"token"`
	}
	body := map[string]string{"username": c.prn, "password": c.secret}
	if err := c.call(ctx, http.MethodPost, "/auth/login", nil, body, &out, false); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return c.setToken(out.Token)
}

// refresh renews the token (GET /auth/login), logging in again if the
// Hub refuses it.
func (c *Client) refresh(ctx context.Context) error {
	var out struct {
		Token string `json:"token"`
	}
	err := c.call(ctx, http.MethodGet, "/auth/login", nil, nil, &out, true)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		return c.login(ctx)
	}
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	return c.setToken(out.Token)
}

// setToken keeps the token and the owner it carries. The payload is read,
// not verified: the device trusts the Hub it talks to over TLS, and only
// needs to know whether the token predates the claim.
func (c *Client) setToken(tok string) error {
	owner, err := tokenOwner(tok)
	if err != nil {
		return err
	}
	c.token, c.tokenOwner = tok, owner
	return nil
}

// sync posts the factory revision if the device has no trail yet.
func (c *Client) sync(ctx context.Context) (bool, error) {
	if err := c.ensureLogin(ctx); err != nil {
		return false, err
	}
	var trails []json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/trails/", nil, nil, &trails, true); err != nil {
		return false, fmt.Errorf("trails: %w", err)
	}
	if len(trails) > 0 {
		return true, nil
	}
	if c.o.Factory == nil {
		return false, errors.New("no factory revision to post")
	}
	rev, err := c.o.Factory()
	if err != nil {
		return false, fmt.Errorf("factory revision: %w", err)
	}
	if err := c.postObjects(ctx, rev); err != nil {
		return false, err
	}
	err = c.call(ctx, http.MethodPost, "/trails/", nil, rev.State, nil, true)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusConflict {
		return true, nil // posted before a lost answer
	}
	if err != nil {
		return false, fmt.Errorf("post trail: %w", err)
	}
	c.o.Log.Info("remote posted factory revision", "id", c.id)
	return true, nil
}
