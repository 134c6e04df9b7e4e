package engine

import (
	"path/filepath"
	"strings"

	"gannet/engine/config"
	"gannet/engine/policy/lua"
)

// LoadConfig loads the configuration file at path: a Lua policy script
// (engine/policy/lua) when its name ends in .lua, a TOML file otherwise, and
// then the TOML file's [policy] script over it. The script, if any, is kept
// in the configuration's PolicyScript, for the engine to start its hooks. Start, check-config and
// reload all load through it. A non-nil error is of type config.Errors, one
// FILE:LINE line per problem.
func LoadConfig(path string) (*config.Config, error) {
	if strings.EqualFold(filepath.Ext(path), ".lua") {
		s, err := lua.LoadScript(path)
		if err != nil {
			return nil, err
		}
		s.Config.PolicyScript = s
		return s.Config, nil
	}
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if c.Policy.Script != "" {
		s, err := lua.Apply(c, c.Policy.Script)
		if err != nil {
			return nil, err
		}
		c.PolicyScript = s
	}
	return c, nil
}
