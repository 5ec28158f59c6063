package main

import (
	"github.com/sluicehq/sluice/pipeline"
	essink "github.com/sluicehq/sluice/sinks/elasticsearch"
	filesinks "github.com/sluicehq/sluice/sinks/file"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	kinesissink "github.com/sluicehq/sluice/sinks/kinesis"
	mongodbsink "github.com/sluicehq/sluice/sinks/mongodb"
	filesource "github.com/sluicehq/sluice/sources/file"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/sluicehq/sluice/sources/greenhouse"
	"github.com/sluicehq/sluice/sources/hubspot"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
	"github.com/sluicehq/sluice/sources/lever"
	"github.com/sluicehq/sluice/sources/salesforce"
	"github.com/sluicehq/sluice/sources/webhooks"
	"github.com/sluicehq/sluice/transforms/decode"
	"github.com/sluicehq/sluice/transforms/dedupe"
	"github.com/sluicehq/sluice/transforms/encode"
	"github.com/sluicehq/sluice/transforms/enrich"
	"github.com/sluicehq/sluice/transforms/filter"
	"github.com/sluicehq/sluice/transforms/mapping" // registers "map"
)

// registry links every component into the CLI: the one place that names
// them all.
func registry() *pipeline.Registry {
	return registryWith(func(r *pipeline.Registry) { webhooks.Register(r) })
}

// registryWith is registry with the webhooks source registered by
// addWebhooks: the demo registers one wired to its replay.
func registryWith(addWebhooks func(*pipeline.Registry)) *pipeline.Registry {
	r := pipeline.NewRegistry()
	generate.Register(r)
	filesource.Register(r)
	kafkasource.Register(r)
	kinesissource.Register(r)
	salesforce.Register(r)
	hubspot.Register(r)
	greenhouse.Register(r)
	lever.Register(r)
	addWebhooks(r)
	decode.Register(r)
	enrich.Register(r)
	dedupe.Register(r)
	filter.Register(r)
	mapping.Register(r)
	encode.Register(r)
	filesinks.Register(r)
	kafkasink.Register(r)
	essink.Register(r)
	mongodbsink.Register(r)
	kinesissink.Register(r)
	return r
}
