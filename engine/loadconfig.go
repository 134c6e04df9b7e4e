package engine

import (
	"path/filepath"
	"strings"

	"gannet/engine/config"
	"gannet/engine/policy/lua"
)

// LoadConfig loads the configuration file at path: a Lua policy script
// (engine/policy/lua) when its name ends in .lua, a TOML file otherwise.
// Start, check-config and reload all load through it. A non-nil error is of
// type config.Errors, one FILE:LINE line per problem.
func LoadConfig(path string) (*config.Config, error) {
	if strings.EqualFold(filepath.Ext(path), ".lua") {
		return lua.Load(path)
	}
	return config.Load(path)
}
