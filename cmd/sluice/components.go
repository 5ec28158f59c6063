package main

import (
	"github.com/sluicehq/sluice/pipeline"
	essink "github.com/sluicehq/sluice/sinks/elasticsearch"
	filesinks "github.com/sluicehq/sluice/sinks/file"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	kinesissink "github.com/sluicehq/sluice/sinks/kinesis"
	filesource "github.com/sluicehq/sluice/sources/file"
	"github.com/sluicehq/sluice/sources/generate"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
	"github.com/sluicehq/sluice/sources/webhooks"
	"github.com/sluicehq/sluice/transforms/decode"
)

// registry links every component into the CLI: the one place that names
// them all.
func registry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	generate.Register(r)
	filesource.Register(r)
	kafkasource.Register(r)
	kinesissource.Register(r)
	webhooks.Register(r)
	decode.Register(r)
	filesinks.Register(r)
	kafkasink.Register(r)
	essink.Register(r)
	kinesissink.Register(r)
	return r
}
