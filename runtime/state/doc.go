// Package state parses, validates and serializes Pantavisor state JSON
// (spec "pantavisor-service-system@1"): the flat map of path → sha256 or
// inline JSON that describes one revision of a device.
//
// Parse validates every key and the documents the runtime interprets
// (bsp/run.json, bsp/drivers.json, device.json, groups.json, disks.json,
// <container>/run.json, <container>/services.json, _sigs/*.json) and keeps
// the canonical bytes of every value, so that State.Canonical reproduces the
// bytes pvr writes to .pvr/json and signatures can hash values exactly.
package state
