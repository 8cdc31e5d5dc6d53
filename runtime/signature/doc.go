// Package signature verifies and produces pvs@2 state signatures, the
// _sigs/<name>.json documents that sign parts of a Pantavisor state
// (pantavisor-service-system@1) in the shape `pvr sig add` writes.
//
// A signature is {"#spec":"pvs@2","protected":B64URL,"signature":B64URL}.
// Its protected header names the algorithm (RS256, ES256, ES384, ES512),
// the signer (an "x5c" certificate chain, or none for the on-device
// pub.pem) and the state keys it covers as include/exclude globs (see
// Match). The signed payload is the canonical JSON object (state.Canonical)
// of the pairs an include glob matches and no exclude glob does, exactly
// what pvr signs; the signed input is the JWS one:
// protected + "." + base64url(payload).
//
// Decisions where upstream is silent or marked ⚠:
//
//   - ES signatures are primarily JOSE r||s (RFC 7518, what pvr/go-jose
//     and Sign produce); ASN.1 DER (what upstream's mbedtls expects) is
//     accepted too.
//   - The header's "jwk" is never trusted: without "x5c" the key comes
//     from <etc>/pantavisor/pvs/trust/pub.pem (any of its PEM keys).
//   - An excluded pair counts as covered only when an include glob of the
//     same signature matches it too (upstream: any exclude match).
//   - A signature never signs its own key.
//   - The OEM trust store applies only when no covered pair (included or
//     excluded) lies under bsp/ or <PV_OEM_NAME>/ (upstream checks the
//     included pairs only): otherwise an OEM signature excluding bsp/**
//     would make the BSP count as covered in strict mode.
//   - A "payload" member (pvr --with-payload) is ignored; the payload is
//     always rebuilt from the state.
//   - Certificate chains are checked at Options.Now, with any extended
//     key usage accepted.
//
// Verifying at boot or before an update:
//
//	v, err := signature.New(signature.Options{
//		Mode:          cfg.Get(config.SecurebootMode),
//		EtcDir:        "/etc",
//		TrustStore:    cfg.Get(config.SecurebootTruststore),
//		OEMTrustStore: cfg.Get(config.SecurebootOEMTruststore),
//		OEMName:       cfg.Get(config.OEMName),
//		Log:           log,
//	})
//	...
//	if err := v.Verify(st); errors.Is(err, signature.ErrInvalid) { ... }
//
// Signing (image builder, tests):
//
//	inc, exc := signature.BSPGlobs()
//	doc, err := signature.Sign(st, "bsp", inc, exc, key, chain)
//	// store doc in the state as signature.SigKey("bsp")
package signature
