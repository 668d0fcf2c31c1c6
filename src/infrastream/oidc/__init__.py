"""Talking to an OpenID provider: discovery, its signing keys, the code exchange, and
verifying ID-token signatures. The rules an ID token's claims must meet are pure and live in
`infrastream.domain.sign_in`; this package does the network and the cryptography (PyJWT)."""
