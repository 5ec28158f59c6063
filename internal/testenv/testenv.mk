# Local test stack for sluice: Apache Kafka 4.4 and OpenSearch 2.19 (real,
# from Maven Central; kfake/ZincSearch with SLUICE_TESTENV_KAFKA=kfake /
# SLUICE_TESTENV_ES=zinc), Kinesis (kinesalite), MongoDB wire protocol
# (FerretDB on PostgreSQL, or SQLite with SLUICE_TESTENV_MONGO_BACKEND=sqlite)
# and Redis, all on 127.0.0.1. See internal/testenv/README.md.
#
# Included from the top-level Makefile; also usable on its own:
#   make -f internal/testenv/testenv.mk testenv
SLUICE_TESTENV_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: testenv testenv-down testenv-build

## testenv: build/install (cached) and start every test server; writes .testenv/env
testenv:
	@bash $(SLUICE_TESTENV_MK_DIR)/up.sh

## testenv-down: stop every server started by `make testenv`
testenv-down:
	@bash $(SLUICE_TESTENV_MK_DIR)/down.sh

## testenv-build: only build/install the servers (fills the cache)
testenv-build:
	@bash $(SLUICE_TESTENV_MK_DIR)/build.sh all
