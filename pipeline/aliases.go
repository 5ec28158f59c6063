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
// per node and saturating above maxExpandedNodes. It walks with an
// explicit stack (a file may nest deeply) and counts an alias back into
// its own anchor, which would expand forever, as over the bound.
func expandedSize(n *yaml.Node, sizes map[*yaml.Node]int) int {
	const inProgress = -1
	type frame struct {
		n    *yaml.Node
		next int // the next child to visit
		sum  int
	}
	over := maxExpandedNodes + 1
	result := 0 // size of the frame that finished last
	stack := []frame{{n: n}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.n == nil {
			stack, result = stack[:len(stack)-1], 0
			continue
		}
		if f.next == 0 && f.sum == 0 {
			switch s, ok := sizes[f.n]; {
			case ok && s == inProgress:
				stack, result = stack[:len(stack)-1], over
				continue
			case ok:
				stack, result = stack[:len(stack)-1], s
				continue
			}
			sizes[f.n] = inProgress
			f.sum = 1
			if f.n.Kind == yaml.AliasNode {
				f.sum = 0
			}
		} else {
			f.sum = min(f.sum+result, over) // the child just finished
		}
		children := f.n.Content
		if f.n.Kind == yaml.AliasNode {
			children = []*yaml.Node{f.n.Alias}
		}
		if f.next < len(children) && f.sum <= maxExpandedNodes {
			c := children[f.next]
			f.next++
			stack = append(stack, frame{n: c})
			continue
		}
		sizes[f.n] = f.sum
		stack, result = stack[:len(stack)-1], f.sum
	}
	return result
}
