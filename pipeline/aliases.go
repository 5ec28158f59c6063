package pipeline

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Bounds of alias expansion in a pipeline file. The decoder follows
// aliases, so nested ones ("billion laughs": nine aliases of nine aliases
// of …) would expand exponentially; a real config stays far below both.
const (
	maxAliases       = 1000    // alias nodes in one file
	maxExpandedNodes = 100_000 // nodes of the document with every alias expanded
)

// checkAliases fails a document whose aliases are too many or expand to
// too many nodes, naming the line of the alias that went over, before
// anything walks the expanded tree.
func checkAliases(file string, root *yaml.Node) *ConfigError {
	sizes := map[*yaml.Node]int{}
	aliases, total := 0, 0
	// An explicit stack walks the document as written, counting each
	// alias as the size its target expands to.
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.AliasNode {
			aliases++
			if aliases > maxAliases {
				return &ConfigError{File: file, Line: n.Line, Msg: fmt.Sprintf("YAML: more than %d aliases", maxAliases)}
			}
			total += expandedSize(n.Alias, sizes)
		} else {
			total++
			for i := len(n.Content) - 1; i >= 0; i-- {
				stack = append(stack, n.Content[i])
			}
		}
		if total > maxExpandedNodes {
			return &ConfigError{File: file, Line: n.Line, Msg: fmt.Sprintf("YAML: aliases expand to more than %d nodes", maxExpandedNodes)}
		}
	}
	return nil
}

// expandedSize is the node count of n with its aliases expanded, memoized
// per node and saturating above maxExpandedNodes. yaml.v3 refuses an
// anchor that contains its own alias, so this terminates; its recursion
// follows the document's nesting, which the parser bounds.
func expandedSize(n *yaml.Node, sizes map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if s, ok := sizes[n]; ok {
		return s
	}
	var s int
	if n.Kind == yaml.AliasNode {
		s = expandedSize(n.Alias, sizes)
	} else {
		s = 1
		for _, c := range n.Content {
			s = min(s+expandedSize(c, sizes), maxExpandedNodes+1)
		}
	}
	sizes[n] = s
	return s
}
