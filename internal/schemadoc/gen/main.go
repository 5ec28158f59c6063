// Command gen writes the doc comments of the config structs to a Go file:
//
//	go run ./internal/schemadoc/gen -root . -o cmd/sluice/schemadoc_gen.go
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sluicehq/sluice/internal/schemadoc"
)

func main() {
	root := flag.String("root", ".", "module root")
	out := flag.String("o", "cmd/sluice/schemadoc_gen.go", "output file")
	pkg := flag.String("pkg", "main", "package of the output file")
	name := flag.String("var", "schemaDocs", "variable name")
	flag.Parse()
	docs, err := schemadoc.Collect(*root, "github.com/sluicehq/sluice", schemadoc.Dirs)
	if err == nil {
		var src []byte
		if src, err = schemadoc.Render(*pkg, *name, docs); err == nil {
			err = os.WriteFile(*out, src, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemadoc:", err)
		os.Exit(1)
	}
}
