// Package docs holds the documentation pages (contract.md, internals.md,
// policy.md) and no code: its test checks that every relative link of
// README.md and the docs resolves inside the repository.
package docs
