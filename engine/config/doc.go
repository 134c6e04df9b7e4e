// Package config reads Gannet's TOML configuration file.
//
// The names of every key are part of the outside contract
// (docs/contract.md, "Config file (TOML)"); default.toml, embedded in
// the program, lists each one with its default value and a line that explains
// it, and is what `gannet config default` prints.
//
// Loading works in layers. The file is first decoded into a generic map, which
// finds syntax errors and counts the elements of each array of tables. The
// configuration then starts as the built-in one; an array of tables present in
// the file replaces the built-in list, each element starting from the
// built-in entry (so a second [[smtp_listener]] gets the same limits and
// timeouts as the first), and the file is decoded over it. Keys the decoder
// did not use are errors. Last, Config.finish fills in derived values and
// Config.validate checks each value and the references between tables.
//
// Every problem is reported as "FILE:LINE: key: what is wrong", the form
// compilers use, so editors can jump to it. The TOML decoder gives lines for
// syntax errors only (and a single line per key name, which is ambiguous for
// arrays of tables), so lineIndex scans the source text itself and maps a key
// path such as smtp_listener[1].listen to the line it is written on.
//
// Values with units have their own types, each an encoding.TextUnmarshaler:
// Duration (Go durations), Size ("20MiB"), Rate ("100/s") and CIDR (a
// network, or one address). Traffic shaping tables keep "was this key set"
// as nil pointers, which is what the precedence rule of Config.Shaping needs.
package config
