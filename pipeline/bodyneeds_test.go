package pipeline_test

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

type needsBody struct{}

func (*needsBody) NeedsDecodedBody() bool { return true }

type decodes struct{}

func (*decodes) DecodesBody() bool { return true }

// TestBodyOrderIsValidated: a step that reads the decoded body without a
// decode step before it is a config error naming its file:line.
func TestBodyOrderIsValidated(t *testing.T) {
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, pipelinetest.NewSource(), &pipelinetest.Sink{})
	pipeline.RegisterTransform(reg, "reader", "needs a body", func(pipeline.BuildContext, *needsBody) (pipeline.Transform, error) { return nil, nil })
	pipeline.RegisterTransform(reg, "decoder", "decodes", func(pipeline.BuildContext, *decodes) (pipeline.Transform, error) { return nil, nil })
	for _, tc := range []struct {
		name, transforms, want string
	}{
		{"reader first", "  - reader: {}\n  - decoder: {}\n", "p.yaml:5: transforms[0].reader: reader reads the decoded event: put a decode step before it"},
		{"reader alone", "  - reader: {}\n", "p.yaml:5: transforms[0].reader:"},
		{"decoder first", "  - decoder: {}\n  - reader: {}\n", ""},
		{"no reader", "  - decoder: {}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "name: p\nsource: {mem: {}}\nsinks: [{mem: {index: 0}}]\ntransforms:\n" + tc.transforms
			_, err := pipeline.Load("p.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
