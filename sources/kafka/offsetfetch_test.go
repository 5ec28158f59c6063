package kafka_test

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/testenv"
)

// kafka-go's consumer group reads a new generation's commits with
// OffsetFetch v1, which has no group-level error: a coordinator still
// loading its offsets (after a broker restart or a coordinator move) answers
// COORDINATOR_LOAD_IN_PROGRESS per partition with offset -1. Were that taken
// for "no commit", the partitions would start at `start`: from the beginning
// (every event again) or, with start: latest, at the end (every event since
// the last run lost). kafka-go fails the join on a partition error and joins
// again; this test holds the source to that.
func TestCommitsReadWhileTheCoordinatorLoadsAreNotLost(t *testing.T) {
	for _, start := range []string{"earliest", "latest"} {
		t.Run(start, func(t *testing.T) {
			topic, group := "loading."+start, "loading-"+start
			c := testenv.StartKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
			brokers := c.ListenAddrs()
			produce(t, brokers, topic, 0, 300, 30)

			first := startConsumer(t, brokers, topic, group, "    start: earliest", nil)
			hwm := highWatermarks(t, brokers, topic)
			waitFor(t, "the first run's commits at the end", func() bool { return committedToEnd(t, brokers, group, topic, hwm) },
				progress(brokers, group, topic, first.sink))
			first.stop(t)

			// The next v1 OffsetFetch of the group is answered as a loading
			// coordinator answers it.
			var injected atomic.Int32
			c.ControlKey(int16(kmsg.OffsetFetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				req := kreq.(*kmsg.OffsetFetchRequest)
				if req.Version != 1 || req.Group != group || injected.Load() > 0 {
					c.KeepControl()
					return nil, nil, false
				}
				injected.Add(1)
				resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
				resp.Version = req.Version
				for _, rt := range req.Topics {
					t := kmsg.NewOffsetFetchResponseTopic()
					t.Topic = rt.Topic
					for _, p := range rt.Partitions {
						rp := kmsg.NewOffsetFetchResponseTopicPartition()
						rp.Partition, rp.Offset = p, -1
						rp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
						t.Partitions = append(t.Partitions, rp)
					}
					resp.Topics = append(resp.Topics, t)
				}
				return resp, nil, true
			})

			second := startConsumer(t, brokers, topic, group, "    start: "+start, nil)
			waitMembers(t, brokers, group, 1)
			newIDs := produce(t, brokers, topic, 300, 60, 30)
			want := map[string]bool{}
			for _, id := range newIDs {
				want[id] = true
			}
			waitFor(t, "the 60 records written after the first run", func() bool {
				got := bodyIDs(second.sink)
				for id := range want {
					if got[id] == 0 {
						return false
					}
				}
				return true
			}, func() string {
				return fmt.Sprintf("injected %d; %s", injected.Load(), progress(brokers, group, topic, second.sink)())
			})
			if injected.Load() != 1 {
				t.Fatalf("the loading coordinator's answer was injected %d times, want 1", injected.Load())
			}
			var old []string
			for id := range bodyIDs(second.sink) {
				if n, _ := strconv.Atoi(strings.TrimPrefix(id, "r")); n < 300 {
					old = append(old, id)
				}
			}
			sort.Strings(old)
			if len(old) > 0 {
				t.Fatalf("the second run re-read %d records committed by the first (e.g. %v): it took a loading coordinator's answer for 'no commit'", len(old), old[:min(5, len(old))])
			}
		})
	}
}
