//go:build tools

// Package tools pins the Go binaries that `make tools` builds (tools.go pattern): the
// module's go.sum then covers exactly what `go build <pkg>` below needs.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
