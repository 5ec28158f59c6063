package testenv

import "github.com/twmb/franz-go/pkg/kmsg"

// KfakeFetchAnswer is an answer to the fetch request kreq (as a kfake
// ControlKey function receives it) holding one partition of its first
// topic, whose fields set fills: an error code, watermarks, crafted record
// batches. The partition's high watermark is -1 unless set says otherwise.
func KfakeFetchAnswer(kreq kmsg.Request, set func(*kmsg.FetchResponseTopicPartition)) kmsg.Response {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic, rt.TopicID = req.Topics[0].Topic, req.Topics[0].TopicID
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.HighWatermark = -1
	set(&rp)
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	return resp
}
