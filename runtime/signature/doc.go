// Package signature verifies and produces pvs@2 state signatures, the
// _sigs/<name>.json documents that sign parts of a Pantavisor state
// (pantavisor-service-system@1) in the shape `pvr sig add` writes.
//
// A signature is {"#spec":"pvs@2","protected":B64URL,"signature":B64URL}.
// Its protected header names the algorithm (RS256, ES256, ES384, ES512),
// the signer (an "x5c" certificate chain, or none for the on-device
// pub.pem) and the state keys it covers as include/exclude globs (see
// Match). The signed payload is the canonical JSON object of the included,
// not excluded, state pairs; the signed input is the JWS one:
// protected + "." + base64url(payload).
//
// Verifying at boot or before an update:
//
//	v, err := signature.New(signature.Options{
//		Mode:    cfg.Get("PV_SECUREBOOT_MODE"),
//		EtcDir:  "/etc",
//		TrustStore: cfg.Get("PV_SECUREBOOT_TRUSTSTORE"),
//		OEMTrustStore: cfg.Get("PV_SECUREBOOT_OEM_TRUSTSTORE"),
//		OEMName: cfg.Get("PV_OEM_NAME"),
//		Log:     log,
//	})
//	...
//	if err := v.Verify(st); errors.Is(err, signature.ErrInvalid) { ... }
//
// Signing (image builder, tests):
//
//	inc, exc := signature.PartGlobs("bsp")
//	doc, err := signature.Sign(st, "bsp", inc, exc, key, chain)
//	// add doc to the state as _sigs/bsp.json
package signature
