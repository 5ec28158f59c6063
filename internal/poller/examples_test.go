package poller_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sources/greenhouse"
	"github.com/sluicehq/sluice/sources/hubspot"
	"github.com/sluicehq/sluice/sources/lever"
	"github.com/sluicehq/sluice/sources/salesforce"
)

// The polling examples load with the pollers and the kafka sink, and a
// mistake in a poller's config is reported at its key.
func TestExamplesLoad(t *testing.T) {
	reg := pipeline.NewRegistry()
	for _, r := range []func(*pipeline.Registry){salesforce.Register, hubspot.Register, greenhouse.Register, lever.Register, kafkasink.Register} {
		r(reg)
	}
	noEnv := func(string) (string, bool) { return "", false }
	for _, f := range []string{"crm-salesforce-to-kafka.yaml", "crm-hubspot-to-kafka.yaml", "ats-greenhouse-to-kafka.yaml", "ats-lever-to-kafka.yaml"} {
		t.Run(f, func(t *testing.T) {
			if _, err := pipeline.LoadFile(filepath.Join("..", "..", "examples", f), reg, noEnv); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, tc := range []struct{ name, source, want string }{
		{"no checkpoint", "hubspot: {token: x, objects: [{name: contacts}]}", "source.hubspot.checkpoint"},
		{"two stores", "lever: {api_key: x, checkpoint: {file: {path: a}, mongodb: {uri: 'mongodb://h', database: d}}}", "set file or mongodb, not both"},
		{"bad grant", "salesforce: {instance_url: 'https://x.my.salesforce.com', objects: [{name: Contact}], auth: {grant: password, client_id: a}, checkpoint: {file: {path: a}}}", "source.salesforce.auth.grant"},
		{"soql injection", "salesforce: {instance_url: 'https://x.my.salesforce.com', objects: [{name: 'Contact WHERE'}], auth: {client_id: a, client_secret: b}, checkpoint: {file: {path: a}}}", "source.salesforce.objects[0].name"},
		{"unknown greenhouse object", "greenhouse: {api_key: x, objects: [offers], checkpoint: {file: {path: a}}}", "source.greenhouse.objects[0]"},
		{"bad start time", "lever: {api_key: x, start_time: yesterday, checkpoint: {file: {path: a}}}", "source.lever.start_time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "name: x\nsource:\n  " + tc.source + "\nsinks: [{kafka: {brokers: ['127.0.0.1:9092'], topic: t}}]\n"
			_, err := pipeline.Load("x.yaml", []byte(doc), reg, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
