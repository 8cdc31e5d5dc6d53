// Package state parses, validates and serializes Pantavisor state JSON
// (spec "pantavisor-service-system@1"): the flat map of path → sha256 or
// inline JSON that describes one revision of a device.
//
// Parse validates every key and the documents the runtime interprets:
// bsp/run.json, bsp/drivers.json, device.json (or the legacy groups.json
// and disks.json, ignored when device.json is present), <dir>/run.json,
// <dir>/services.json and pvs@2 signatures (normally _sigs/*.json).
// <dir>/src.json, <dir>/build.json and other *.json values are kept as
// inline JSON without interpretation. Document members are matched by
// exact name (upstream matches prefixes, a bug we do not copy); unknown
// members are tolerated for forward compatibility.
//
// Parse keeps the canonical bytes of every value (Raw) and of the whole
// state (State.Canonical), byte-identical to what pvr writes to .pvr/json;
// see Canonical for the rules.
//
// # Ownership
//
// A platform lives in the directory given by the first element of its
// run.json key (Platform.Dir); its "name" may differ. Owner maps a path to
// that directory (the second element for _config/<name>/…, whose
// directory upstream names after the platform), and State.PlatformOwning
// maps a path to its Platform: _config/<x>/… by platform name x first,
// every other path by directory. Root files (device.json, groups.json,
// disks.json) have no owner; bsp/… is owned by "bsp" and _sigs/… by
// "_sigs", neither of which is a platform.
package state
