// Package configs holds the example config files; demo.yaml is embedded
// as `kitd demo`'s default.
package configs

import _ "embed"

// Demo is configs/demo.yaml: the embedded default `kitd demo` runs.
//
//go:embed demo.yaml
var Demo []byte
