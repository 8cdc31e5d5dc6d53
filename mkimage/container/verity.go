package container

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/pantavisor/pantavisor-go/runtime/dmverity"
)

// Verity makes volume file (root.squashfs) of container name in e a
// dm-verity volume, as `pvr dm-convert <name> <file>` does: the hash
// device <file>.hash beside the data file (a new object), the manifest
// <name>/_dm/<file>.json with the root hash (inline, so the state's
// signature covers it) and "dm:<file>" in run.json where the plain file
// was. The salt and UUID come from the data's digest: the same squashfs
// gives the same hash device (reproducible builds).
func Verity(e Entries, name, file string) error {
	if err := dmverity.PlainName(file); err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	key := name + "/" + file
	data, ok := e.Objects[key]
	if !ok {
		return fmt.Errorf("container %s: dm-verity: no object %s", name, key)
	}
	runKey := name + "/run.json"
	run, err := dmRunJSON(e.Inline[runKey], file)
	if err != nil {
		return fmt.Errorf("container %s: dm-verity: run.json: %w", name, err)
	}
	seed, err := fileSHA256(data)
	if err != nil {
		return fmt.Errorf("container %s: dm-verity: %w", name, err)
	}
	hash := data + ".hash"
	root, err := dmverity.FormatSeeded(data, hash, seed)
	if err != nil {
		return fmt.Errorf("container %s: dm-verity: %w", name, err)
	}
	m, err := json.Marshal(dmverity.Manifest{Type: dmverity.ManifestType, DataDevice: file, HashDevice: file + ".hash",
		RootHash: hex.EncodeToString(root)})
	if err != nil {
		return err
	}
	add := Entries{Objects: map[string]string{key + ".hash": hash}, Inline: map[string]json.RawMessage{name + "/_dm/" + file + ".json": m}}
	if err := e.Merge(add); err != nil {
		return err
	}
	e.Inline[runKey] = run
	return nil
}

// dmRunJSON returns run.json with volume file named "dm:<file>" as its
// root-volume or in its volumes, where it must be.
func dmRunJSON(raw json.RawMessage, file string) (json.RawMessage, error) {
	var run map[string]json.RawMessage
	if err := json.Unmarshal(raw, &run); err != nil {
		return nil, err
	}
	found := false
	var root string
	if err := json.Unmarshal(run["root-volume"], &root); err == nil && root == file {
		run["root-volume"], _ = json.Marshal("dm:" + file)
		found = true
	}
	var vols []string
	if v, ok := run["volumes"]; ok {
		if err := json.Unmarshal(v, &vols); err != nil {
			return nil, fmt.Errorf("volumes: %w", err)
		}
	}
	for i, v := range vols {
		if v == file {
			vols[i] = "dm:" + file
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("%s is neither root-volume nor in volumes", file)
	}
	if vols != nil {
		run["volumes"], _ = json.Marshal(vols)
	}
	return json.Marshal(run)
}

func fileSHA256(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
