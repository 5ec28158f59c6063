package bench

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/tidwall/gjson"

	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// kinesisTail is the chaos run's own view of a Kinesis stream: it reads
// every shard (parents and children of a split alike) from its beginning
// as the run goes, so it knows every record's shard, sequence number,
// partition key and event id, and it reads the group's leases. From both
// it counts what is checkpointed (a checkpoint is a sequence number, not a
// count), judges the drain, and notices a checkpoint that moved back — what
// a consumer that lost its lease would do if it checkpointed over the new
// owner. Only the sampler's goroutine and, after the run, the audit use it.
type kinesisTail struct {
	client *kinesis.Client
	stream string
	leases *kinesissource.MongoLeases
	start  time.Time
	shards map[string]*tailShard
	order  []string          // shard ids as first listed
	cps    map[string]string // the last checkpoint seen per shard
	// Regressions are the checkpoints seen moving back.
	Regressions []string
}

// tailShard is one shard as read by the tail.
type tailShard struct {
	id      string
	parents []string
	iter    *string
	ended   bool // read to its end: the shard is closed
	caught  bool // the last read reached the shard's tip
	recs    []tailRecord
}

// tailRecord is one record of a shard, in the shard's order.
type tailRecord struct {
	seq, key, id string
}

func newKinesisTail(ctx context.Context, endpoint string, c *kinesissource.Config) (*kinesisTail, error) {
	client, leases, err := openKinesisGroup(ctx, endpoint, c)
	if err != nil {
		return nil, err
	}
	return &kinesisTail{client: client, stream: c.Stream, leases: leases, start: time.Now(),
		shards: map[string]*tailShard{}, cps: map[string]string{}}, nil
}

func (t *kinesisTail) close() { _ = t.leases.Close(context.Background()) }

// cmpSeq orders Kinesis sequence numbers (decimal strings).
func cmpSeq(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// listShards lists every shard of the stream, closed ones included.
func (t *kinesisTail) listShards(ctx context.Context) ([]kinesistypes.Shard, error) {
	var out []kinesistypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(t.stream)}
	for {
		page, err := t.client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", t.stream, err)
		}
		out = append(out, page.Shards...)
		if page.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

// tailBudget bounds the reading of one poll, so the sampler keeps its
// one-second pace while the tail catches up (after a stall, or on a slow
// kinesalite): a shard not read to its tip is read further next time.
const tailBudget = 2 * time.Second

// poll picks up new shards and reads every open one towards its tip, for
// at most tailBudget. Only a failure to list the shards is an error; a
// shard whose read failed or ran out of time is not caught up (a failure
// is returned in behind) and is read on from there next time.
func (t *kinesisTail) poll(ctx context.Context) (behind []string, err error) {
	shards, err := t.listShards(ctx)
	if err != nil {
		return nil, err
	}
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		if t.shards[id] != nil {
			continue
		}
		ts := &tailShard{id: id}
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p != nil {
				ts.parents = append(ts.parents, *p)
			}
		}
		t.shards[id] = ts
		t.order = append(t.order, id)
	}
	// The budget is checked between calls, never by cutting one short:
	// on a slow server, a call cut short would be lost work every time.
	until := time.Now().Add(tailBudget)
	for _, id := range t.order {
		if err := t.readShard(ctx, t.shards[id], until); err != nil {
			behind = append(behind, err.Error())
		}
	}
	return behind, nil
}

// readShard reads a shard from where the tail left it to its tip, or to
// its end when it is closed; it makes no new call after until.
func (t *kinesisTail) readShard(ctx context.Context, s *tailShard, until time.Time) error {
	s.caught = s.ended
	for !s.ended && time.Now().Before(until) {
		if s.iter == nil {
			in := &kinesis.GetShardIteratorInput{StreamName: aws.String(t.stream), ShardId: aws.String(s.id), ShardIteratorType: kinesistypes.ShardIteratorTypeTrimHorizon}
			if n := len(s.recs); n > 0 {
				in.ShardIteratorType, in.StartingSequenceNumber = kinesistypes.ShardIteratorTypeAfterSequenceNumber, aws.String(s.recs[n-1].seq)
			}
			it, err := t.client.GetShardIterator(ctx, in)
			if err != nil {
				return fmt.Errorf("shard iterator of %s: %w", s.id, err)
			}
			s.iter = it.ShardIterator
		}
		out, err := t.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: s.iter, Limit: aws.Int32(2000)})
		if err != nil {
			s.iter = nil // expired or refused: the next read starts after the last record kept
			return fmt.Errorf("records of %s: %w", s.id, err)
		}
		for _, r := range out.Records {
			s.recs = append(s.recs, tailRecord{seq: aws.ToString(r.SequenceNumber), key: aws.ToString(r.PartitionKey), id: gjson.GetBytes(r.Data, "id").String()})
		}
		s.iter = out.NextShardIterator
		if s.iter == nil {
			s.ended, s.caught = true, true
			return nil
		}
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			s.caught = true
			return nil
		}
	}
	return nil
}

// progress reads the stream and the leases: records checkpointed, records
// not yet, whether every shard is checkpointed at its end, and where each
// shard stands.
func (t *kinesisTail) progress(ctx context.Context) (streamProgress, error) {
	behind, err := t.poll(ctx)
	if err != nil {
		return streamProgress{}, err
	}
	list, err := t.leases.List(ctx)
	if err != nil {
		return streamProgress{}, err
	}
	cps := map[string]string{}
	for _, l := range list {
		cps[l.Shard] = l.Checkpoint
	}
	var pr streamProgress
	pr.Drained = len(t.order) > 0
	var parts []string
	for _, id := range t.order {
		s := t.shards[id]
		cp, leased := cps[id]
		t.noteCheckpoint(id, cp)
		done := s.checkpointed(cp)
		pr.Committed += int64(done)
		pr.Lag += int64(len(s.recs) - done)
		at := fmt.Sprintf("%d/%d", done, len(s.recs))
		switch {
		case !leased:
			at, pr.Drained = "no lease", false
		case s.ended && cp != kinesissource.ShardEnd:
			at += " closed, not at SHARD_END"
			pr.Drained = false
		case !s.caught:
			at += " (tail still reading)"
			pr.Drained = false
		case done < len(s.recs):
			pr.Drained = false
		case cp == kinesissource.ShardEnd:
			at = "SHARD_END"
		}
		parts = append(parts, id+" "+at)
	}
	pr.Where = "shards: " + strings.Join(parts, ", ")
	if len(behind) > 0 {
		pr.Where += "; reading the stream: " + strings.Join(behind, "; ")
	}
	return pr, nil
}

// checkpointed is how many of the shard's records a checkpoint covers.
func (s *tailShard) checkpointed(cp string) int {
	switch cp {
	case "":
		return 0
	case kinesissource.ShardEnd:
		return len(s.recs)
	}
	n, _ := slices.BinarySearchFunc(s.recs, cp, func(r tailRecord, seq string) int { return cmpSeq(r.seq, seq) })
	if n < len(s.recs) && s.recs[n].seq == cp {
		n++
	}
	return n
}

// noteCheckpoint records a shard's checkpoint and whether it moved back
// since the last read: to "" or from SHARD_END, or to a lower sequence.
func (t *kinesisTail) noteCheckpoint(shard, cp string) {
	old, seen := t.cps[shard]
	t.cps[shard] = cp
	if !seen || old == "" || old == cp {
		return
	}
	back := cp == "" || old == kinesissource.ShardEnd || cp != kinesissource.ShardEnd && cmpSeq(cp, old) < 0
	if back {
		t.Regressions = append(t.Regressions, fmt.Sprintf("shard %s: checkpoint moved back from %s to %q at %.1fs", shard, old, cp, time.Since(t.start).Seconds()))
	}
}

// split splits an open shard (drawn with rng) at the middle of its hash
// key range and waits until the stream is active again.
func (t *kinesisTail) split(ctx context.Context, rng *rand.Rand) (string, error) {
	shards, err := t.listShards(ctx)
	if err != nil {
		return "", err
	}
	var open []kinesistypes.Shard
	for _, sh := range shards {
		if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, sh)
		}
	}
	if len(open) == 0 {
		return "", errors.New("no open shard to split")
	}
	sh := open[rng.IntN(len(open))]
	lo, ok1 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
	hi, ok2 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("shard %s: unreadable hash key range", aws.ToString(sh.ShardId))
	}
	if hi.Cmp(lo) <= 0 {
		return "", fmt.Errorf("shard %s: its hash key range holds one key; it cannot be split", aws.ToString(sh.ShardId))
	}
	mid := new(big.Int).Add(lo, hi)
	mid.Rsh(mid, 1).Add(mid, big.NewInt(1)) // in (lo, hi]: both children get keys
	target := fmt.Sprintf("shard %s split at hash key %s", aws.ToString(sh.ShardId), mid)
	if _, err := t.client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(t.stream), ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		return target, fmt.Errorf("SplitShard: %w", err)
	}
	for {
		out, err := t.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(t.stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == kinesistypes.StreamStatusActive {
			return target, nil
		}
		select {
		case <-ctx.Done():
			return target, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// owners reads which consumer (lease owner) holds which shard now; an
// expired lease counts for nobody.
func (t *kinesisTail) owners(ctx context.Context) (map[string][]string, error) {
	list, err := t.leases.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	now := time.Now()
	for _, l := range list {
		if !l.Expired(now) {
			out[l.Owner] = append(out[l.Owner], l.Shard)
		}
	}
	return out, nil
}
