package http

import "bytes"

// OpenAPI returns the API's OpenAPI 3.0 document, as served at
// /openapi.json, for tools and tests that check answers against it.
func OpenAPI() []byte { return bytes.Clone(openapi) }
