// Package ca embeds the public developer CA of ca/developer (README.md:
// development only, replace it for production), so builds and tests find
// it wherever they run.
package ca

import _ "embed"

// Developer CA files (ca/developer, made by ca/gen).
var (
	// DeveloperCert is developer/ca.crt, the default device trust store.
	//go:embed developer/ca.crt
	DeveloperCert []byte
	// DeveloperSignerKey is developer/signer.key, the default signing key.
	//go:embed developer/signer.key
	DeveloperSignerKey []byte
	// DeveloperSignerCert is developer/signer.crt, the default x5c chain.
	//go:embed developer/signer.crt
	DeveloperSignerCert []byte
)
