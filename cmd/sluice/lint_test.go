package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateWarnsOfFieldsNoStepProduces(t *testing.T) {
	dir := t.TempDir()
	head := "name: x\nsource: {generate: {count: 1}}\ntransforms:\n"
	tail := "sinks: [{stdout: {}}]\n"
	for _, tc := range []struct {
		name, transforms string
		want             []string // warnings in stderr; none when empty
	}{
		{"filter after enrich, typo", "  - decode: {format: json}\n  - enrich: {}\n  - filter: {keep: 'entity.knd == \"contact\"'}\n",
			[]string{"bad.yaml:6: warning: transforms[2].filter.keep: reads entity.knd, which no earlier step produces (after transforms[1].enrich the body is known); did you mean entity.kind?"}},
		{"map after enrich reads, renames and deletes unknown fields", "  - decode: {format: json}\n  - enrich: {}\n  - map: {set: {x: 'data.Email'}, rename: {actr: a}, delete: [entity.idd]}\n",
			[]string{"transforms[2].map.set.x: reads data.Email", "transforms[2].map.rename.actr: reads actr", "transforms[2].map.delete: reads entity.idd"}},
		{"a field set by an earlier map is known", "  - decode: {format: json}\n  - enrich: {}\n  - map: {set: {score: '1'}}\n  - filter: {keep: 'score > 0 && attributes.anything != nil'}\n", nil},
		{"a renamed field is gone", "  - decode: {format: json}\n  - enrich: {}\n  - map: {rename: {type: kind}}\n  - filter: {keep: 'type == \"x\"'}\n",
			[]string{"transforms[3].filter.keep: reads type"}},
		{"without enrich the schema is unknown", "  - decode: {format: json}\n  - filter: {keep: 'whatever.field == 1'}\n", nil},
		{"enrich with unknown: pass knows nothing", "  - decode: {format: json}\n  - enrich: {unknown: pass}\n  - filter: {keep: 'whatever == 1'}\n", nil},
		{"a step that changes the body unknowably resets it", "  - decode: {format: json}\n  - enrich: {}\n  - encode: {format: json}\n  - filter: {keep: 'whatever == 1'}\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(f, []byte(head+tc.transforms+tail), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if code := execute([]string{"validate", f}, &out, &errOut); code != 0 {
				t.Fatalf("a warning failed validate: exit %d\n%s", code, errOut.String())
			}
			got := errOut.String()
			if len(tc.want) == 0 && got != "" {
				t.Fatalf("unexpected warnings:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
