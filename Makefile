# sluice — the two commands that work on a fresh machine:
#   make demo   replays recorded CRM/ATS/email vendor payloads through the connectors → Kafka → the stores
#   make test   brings up the local test stack and runs every test with -race
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/sluice
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
TEST_TIMEOUT ?= 30m

-include internal/testenv/testenv.mk

.PHONY: help build demo demo-load test unit lint fmt validate-examples bench clean image

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/sluice
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

demo: build ## start the local stack, then replay recorded vendor payloads through the connectors → Kafka → consumer → stores
	@if [ -f internal/testenv/testenv.mk ]; then $(MAKE) --no-print-directory testenv; fi
	@set -a; [ -f .testenv/env ] && source .testenv/env; set +a; \
	  ./$(BIN) demo --source recorded --out out/demo --log-level error

demo-load: build ## start the local stack, then run the synthetic-load demo (generate → Kafka → consumer → stores)
	@if [ -f internal/testenv/testenv.mk ]; then $(MAKE) --no-print-directory testenv; fi
	@set -a; [ -f .testenv/env ] && source .testenv/env; set +a; \
	  ./$(BIN) demo --source generated --out out/demo --log-level warn

# Examples take secrets from the environment with no default, on purpose; these
# throwaway values (a P-256 test key, a dummy signing key, a made-up SNS topic)
# only let them validate.
EXAMPLE_SECRETS := SENDGRID_WEBHOOK_PUBLIC_KEY=MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEk4a7WLkJRDh9mTALI7YPuFZxU8xFIWNVoUn8KdxVkCLqja+bWgpbmCgp/Tm7S9/FA5+ju39X1RixNS5KsXrjZg== \
	MAILGUN_WEBHOOK_SIGNING_KEY=example-signing-key \
	SES_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:ses-events

validate-examples: build ## every file in examples/ must validate
	$(EXAMPLE_SECRETS) ./$(BIN) validate examples/*.yaml

unit: ## unit tests only (no servers needed; integration tests skip)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test: lint validate-examples ## start the test stack, then run every test with -race
	@if [ -f internal/testenv/testenv.mk ]; then $(MAKE) --no-print-directory testenv; fi
	@set -a; [ -f .testenv/env ] && source .testenv/env; set +a; \
	  SLUICE_TESTENV_REQUIRED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

BENCH_DURATION ?= 60s
bench: build ## the standard set: Go microbenchmarks, then sluice bench engine, max, peak and burst (needs make testenv)
	@if [ -f internal/testenv/testenv.mk ]; then $(MAKE) --no-print-directory testenv; fi
	@set -a; [ -f .testenv/env ] && source .testenv/env; set +a; \
	  $(GO) test -run '^$$' -bench . -benchmem -benchtime 200000x ./bench/ && \
	  ./$(BIN) bench --profile engine --count 1000000 && \
	  ./$(BIN) bench --profile max --count 200000 --out out/bench/max --log-level warn && \
	  ./$(BIN) bench --profile peak --duration $(BENCH_DURATION) --out out/bench/peak --log-level warn && \
	  ./$(BIN) bench --profile burst --duration $(BENCH_DURATION) --out out/bench/burst --log-level warn

IMAGE ?= ghcr.io/sluicehq/sluice:$(VERSION)

image: ## build the container image $(IMAGE) from deploy/Dockerfile (docker with BuildKit)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE) .

clean: ## remove build and demo output
	rm -rf bin out
