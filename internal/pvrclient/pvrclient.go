// Package pvrclient is a test client that speaks pvr's remote protocol
// the way pvr 036 does on the wire (spec pvr-hub §1.7–1.8, recorded
// traffic): real pvr cannot be built here (its module needs
// gitlab.com/pantacor/pantahub-base, which the Go proxy refuses), so the
// pvr-sdk tests and the App Engine suites use this instead. The image
// builder clones a PVR_MERGE_SRC clone URL with it.
//
// A repository is a directory holding "json" (the state) and
// "objects/<sha256>", like an unpacked pvr export.
//
//	err := pvrclient.Clone(ctx, "127.0.0.1", dir)     // = http://127.0.0.1:12368/cgi-bin/pvr
//	err = pvrclient.Set(dir, "_config/app/etc/x.json", []byte(`{"a":1}`))
//	res, err := pvrclient.Post(ctx, "127.0.0.1", dir, "local post", 5)
package pvrclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Remote is a .pvrremote document.
type Remote struct {
	Spec            string   `json:"pvr-spec"`
	JSONGetURL      string   `json:"json-get-url"`
	JSONKey         string   `json:"json-key"`
	ObjectsEndpoint string   `json:"objects-endpoint"`
	PostURL         string   `json:"post-url"`
	PostFields      []string `json:"post-fields"`
	PostFieldsOpt   []string `json:"post-fields-opt"`
}

// Result is the answer of a post pvr requires.
type Result struct {
	StateSha string          `json:"state-sha"`
	Rev      json.Number     `json:"rev"`
	TrailID  string          `json:"trail-id"`
	Raw      json.RawMessage `json:"-"`
}

// StatusError is a non-2xx answer, with its body as pvr would print it.
type StatusError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.URL, e.Status, strings.TrimSpace(e.Body))
}

var bareIP = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)

// FixupRepoRef turns pvr's bare-IP shorthand into the device URL:
// "1.2.3.4" is http://1.2.3.4:12368/cgi-bin/pvr.
func FixupRepoRef(ref string) string {
	if bareIP.MatchString(ref) {
		return "http://" + net.JoinHostPort(ref, "12368") + "/cgi-bin/pvr"
	}
	return strings.TrimSuffix(ref, "/")
}

func do(ctx context.Context, method, url string, body []byte, hdr map[string]string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return http.DefaultClient.Do(req)
}

// maxJSON bounds a JSON answer (a state: pv-ctrl's limit is 32 MiB).
const maxJSON = 64 << 20

func getJSON(ctx context.Context, url string, out any) error {
	resp, err := do(ctx, "GET", url, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// bounded: the answer comes from another machine
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{"GET", url, resp.StatusCode, string(data)}
	}
	if len(data) > maxJSON {
		return fmt.Errorf("GET %s: answer larger than %d bytes", url, maxJSON)
	}
	return json.Unmarshal(data, out)
}

// GetRemote reads <repo>/.pvrremote.
func GetRemote(ctx context.Context, repo string) (Remote, error) {
	var rm Remote
	err := getJSON(ctx, FixupRepoRef(repo)+"/.pvrremote", &rm)
	if err == nil && (rm.JSONGetURL == "" || rm.ObjectsEndpoint == "" || rm.PostURL == "" || rm.JSONKey == "") {
		err = errors.New(".pvrremote: missing fields")
	}
	return rm, err
}

// objects returns the object shas of a state: values of 64 hex
// characters (pvr's IsSha) of keys other than #spec.
func objects(state map[string]json.RawMessage) map[string]string {
	out := map[string]string{}
	for k, v := range state {
		var s string
		if k == "#spec" || json.Unmarshal(v, &s) != nil || !isSha(s) {
			continue
		}
		out[k] = s
	}
	return out
}

func isSha(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Clone fetches the device's state and every object into dir.
func Clone(ctx context.Context, repo, dir string) error {
	rm, err := GetRemote(ctx, repo)
	if err != nil {
		return err
	}
	var state map[string]json.RawMessage
	if err := getJSON(ctx, rm.JSONGetURL, &state); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "objects"), 0o755); err != nil {
		return err
	}
	for _, sha := range objects(state) {
		if err := fetchObject(ctx, rm, sha, filepath.Join(dir, "objects", sha)); err != nil {
			return err
		}
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "json"), data, 0o644)
}

func fetchObject(ctx context.Context, rm Remote, sha, dst string) error {
	if ok, _ := fileHas(dst, sha); ok {
		return nil
	}
	var rec struct {
		GetURL string `json:"signed-geturl"`
	}
	if err := getJSON(ctx, rm.ObjectsEndpoint+"/"+sha, &rec); err != nil {
		return err
	}
	resp, err := do(ctx, "GET", rec.GetURL, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return &StatusError{"GET", rec.GetURL, resp.StatusCode, string(b)}
	}
	f, err := os.Create(dst + ".new")
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != sha {
		err = fmt.Errorf("object %s: content does not match", sha)
	}
	if err != nil {
		os.Remove(dst + ".new")
		return err
	}
	return os.Rename(dst+".new", dst)
}

func fileHas(name, sha string) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == sha, nil
}

// Set sets key of the repository's state to a JSON value (inline), or to
// an object when value is not JSON.
func Set(dir, key string, value []byte) error {
	state, err := readState(dir)
	if err != nil {
		return err
	}
	if json.Valid(value) && json.Unmarshal(value, new(map[string]any)) == nil {
		state[key] = json.RawMessage(value)
	} else {
		sum := sha256.Sum256(value)
		sha := hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(dir, "objects", sha), value, 0o644); err != nil {
			return err
		}
		state[key], _ = json.Marshal(sha)
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "json"), data, 0o644)
}

func readState(dir string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(filepath.Join(dir, "json"))
	if err != nil {
		return nil, err
	}
	var state map[string]json.RawMessage
	if err := json.Unmarshal(data, &state); err != nil {
		return nil, fmt.Errorf("%s/json: %w", dir, err)
	}
	return state, nil
}

// Post sends the repository's state as pvr post does: objects the
// baseline lacks are offered to the objects endpoint (409 = skipped) and
// uploaded, then the state is posted. rev < 0 leaves "rev" out.
func Post(ctx context.Context, repo, dir, msg string, rev int) (Result, error) {
	var res Result
	rm, err := GetRemote(ctx, repo)
	if err != nil {
		return res, err
	}
	state, err := readState(dir)
	if err != nil {
		return res, err
	}
	var base map[string]json.RawMessage
	if err := getJSON(ctx, rm.JSONGetURL, &base); err != nil {
		return res, err
	}
	have := map[string]bool{}
	for _, sha := range objects(base) {
		have[sha] = true
	}
	keys := make([]string, 0)
	objs := objects(state)
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sha := objs[k]
		if have[sha] {
			continue
		}
		have[sha] = true
		if err := putObject(ctx, rm, k, sha, filepath.Join(dir, "objects", sha)); err != nil {
			return res, err
		}
	}
	body := map[string]any{"commit-msg": msg, rm.JSONKey: state}
	if rev >= 0 {
		body["rev"] = rev
	}
	data, err := json.Marshal(body) // sorted keys, compact: canonical for these values
	if err != nil {
		return res, err
	}
	resp, err := do(ctx, "POST", rm.PostURL, data, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return res, &StatusError{"POST", rm.PostURL, resp.StatusCode, string(out)}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return res, fmt.Errorf("post answer: %w", err)
	}
	if res.StateSha == "" || res.Rev == "" {
		return res, fmt.Errorf("post answer lacks state-sha or rev: %s", out)
	}
	res.Raw = out
	return res, nil
}

func putObject(ctx context.Context, rm Remote, key, sha, file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		// pvr would fail the same way: the object is not in the store.
		return fmt.Errorf("object %s of %s: %w", sha, key, err)
	}
	req, _ := json.Marshal(map[string]string{"objectname": filepath.Base(key), "sha256sum": sha,
		"size": strconv.FormatInt(fi.Size(), 10), "mime-type": "application/octet-stream"})
	resp, err := do(ctx, "POST", rm.ObjectsEndpoint+"/", req, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return err
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusConflict:
		return nil
	case http.StatusOK:
	default:
		return &StatusError{"POST", rm.ObjectsEndpoint + "/", resp.StatusCode, string(data)}
	}
	var rec struct {
		PutURL string `json:"signed-puturl"`
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec.PutURL == "" {
		return fmt.Errorf("object %s: answer without signed-puturl: %s", sha, data)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	put, err := http.NewRequestWithContext(ctx, "PUT", rec.PutURL, f)
	if err != nil {
		return err
	}
	put.ContentLength = fi.Size()
	presp, err := http.DefaultClient.Do(put)
	if err != nil {
		return err
	}
	defer presp.Body.Close()
	if presp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(presp.Body)
		return &StatusError{"PUT", rec.PutURL, presp.StatusCode, string(b)}
	}
	return nil
}
