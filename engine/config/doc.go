// Package config reads Gannet's TOML configuration file.
//
// The names of every key are part of the outside contract
// (docs/contract.md, "Config file (TOML)"); default.toml, embedded in
// the program, lists each one with its default value and a line that explains
// it, and is what `gannet config default` prints.
//
// Loading works in layers. The configuration starts as the built-in one,
// and the file is laid over it one key at a time (decode.go), with go-toml's
// parser, which keeps the position of every key and value: a key that does
// not exist, a value of the wrong type or one its type refuses ("3 days" as
// a duration) is reported and the other keys are still read. An array of
// tables present in the file replaces the built-in list, each element
// starting from the built-in entry (so a second [[smtp_listener]] gets the
// same limits and timeouts as the first). A syntax error stops the TOML
// parser; its line is blanked and the text parsed again, so that the
// mistakes after it are found in the same run. Last, Config.finish fills in
// derived values and Config.validate checks each value and the references
// between tables.
//
// Every problem is reported as "FILE:LINE: key: what is wrong", the form
// compilers use, so editors can jump to it, with what to write instead, all
// of them at once and in line order. The decoder records the line of every
// key path, such as smtp_listener[1].listen, for the checks of the decoded
// values.
//
// Show (show.go) writes a configuration back as TOML: every key, or only
// those that differ from the built-in values, with secrets redacted.
//
// Values with units have their own types, each an encoding.TextUnmarshaler:
// Duration (Go durations), Size ("20MiB"), Rate ("100/s") and CIDR (a
// network, or one address). Traffic shaping tables keep "was this key set"
// as nil pointers, which is what the precedence rule of Config.Shaping needs.
package config
