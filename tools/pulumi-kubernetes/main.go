// Command pulumi-resource-kubernetes serves the upstream Kubernetes provider package.
//
// Upstream's own main package (provider/v4/cmd/pulumi-resource-kubernetes) embeds
// schema-embed.json, a file its Makefile generates with `go generate` and which is therefore
// absent from the module zip, so it cannot be built with `go build` from the proxy. This main
// is the same two calls; `make tools` copies the module's schema.json and
// terraform-mapping.json next to it (gitignored) before building.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
