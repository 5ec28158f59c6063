package pipeline

import "fmt"

// BodyNeeder is implemented by the config of a transform that reads the
// decoded body (Event.Body): enrich, map, encode. NeedsDecodedBody says
// whether this configuration does.
type BodyNeeder interface {
	NeedsDecodedBody() bool
}

// BodyDecoder is implemented by the config of a transform that sets the
// decoded body: decode.
type BodyDecoder interface {
	DecodesBody() bool
}

// checkBodyOrder reports every transform that needs a decoded body with no
// decoding step before it: at run time each of its events would be
// dead-lettered ("no decoded body") while the source acks them.
func checkBodyOrder(file string, ts []TransformSpec) ConfigErrors {
	var errs ConfigErrors
	decoded := false
	for i := range ts {
		s := &ts[i].Spec
		if n, ok := s.Config.(BodyNeeder); ok && n.NeedsDecodedBody() && !decoded {
			errs = append(errs, &ConfigError{File: file, Line: s.Line, Path: s.Path + "." + s.Name,
				Msg: fmt.Sprintf("%s reads the decoded event: put a decode step before it (transforms: [{decode: {format: json}}, {%s: …}])", s.Name, s.Name)})
		}
		if d, ok := s.Config.(BodyDecoder); ok && d.DecodesBody() {
			decoded = true
		}
	}
	return errs
}
