// Package pvtx builds Pantavisor state revisions in transactions, like
// upstream's pvtx tool: start from a base state, merge packages (`pvr
// export` tarballs or state JSON) and remove parts, then commit the result
// to pv-ctrl as a local revision (remote transaction) or deploy it as a
// revision directory (local transaction).
//
//	tx, err := pvtx.Open(pvtx.Options{Dir: "/var/cache/pvtx"})
//	err = tx.Begin(ctx, "current", "")     // remote: base from pv-ctrl
//	err = tx.Add(ctx, tarball)             // objects PUT to pv-ctrl
//	err = tx.Remove("nginx")
//	rev, err := tx.Commit(ctx, "")         // PUT /steps/locals/pvtx-…
//
// The state between invocations lives in PVTXDIR (current.json and the
// binary .status file), so every method can be one CLI invocation; CLI
// maps the commands, their prefix-matched words and upstream's exit codes.
//
// State documents are handled as Doc: sorted top-level keys with their
// values kept byte for byte (signatures cover that text). Removes are
// signature-aware (see Doc.Remove).
package pvtx
