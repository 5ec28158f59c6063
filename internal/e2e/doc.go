// Package e2e holds end-to-end tests that cross components: real servers,
// the real sluice binary, several pipelines. It has no non-test code.
package e2e
