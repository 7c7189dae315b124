// Package docs holds tests that keep docs/ true to the code: the generated
// CRD reference and flag tables are current, the operator defaults the API
// descriptions announce match the code, and the signature verification
// snippets of docs/wire-contract.md run and accept exactly what they should.
package docs
