// Package ci holds no code. Its tests keep coderctl-smoke.yml, the GitHub
// Actions workflow docs/ci.md shows, valid (actionlint, with every action's
// inputs checked), true to its contract (up only on push to main, verify
// with a JUnit report on every run, the report published even when verify
// fails, OIDC instead of keys, no secret printed), and quoted verbatim by
// docs/ci.md.
package ci
