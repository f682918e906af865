# ParkHub: every target first runs scripts/bootstrap.sh, which installs what is missing and starts what is not
# running (idempotent, quick when all is there). DATABASE_URL, REDIS_URL and the other settings pass through from
# the environment or the command line (`make run PARKHUB_PORT=9000`) untouched.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PARKHUB_HOST ?= 127.0.0.1
PARKHUB_PORT ?= 8000
export PARKHUB_HOST PARKHUB_PORT

BIN := .venv/bin
# Extra arguments, e.g. `make test PYTEST_ARGS="-k geo -x"` or `make bench BENCH_ARGS="--spaces 20000"`.
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help bootstrap run test bench lint fmt schema

help:
	@echo "make run     set up, migrate, seed the demo city if empty, serve API + worker on http://$(PARKHUB_HOST):$(PARKHUB_PORT)"
	@echo "make test    set up, then ruff (lint + format check) and the whole test suite"
	@echo "make bench   set up, then the benchmarks (python -m bench; BENCH_ARGS=\"--only lanes\" for one)"
	@echo "make lint    ruff check and ruff format --check"
	@echo "make fmt     ruff format and ruff check --fix"
	@echo "make schema  export the GraphQL SDL to schema/schema.graphql"

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	$(BIN)/parkhub db prepare
	$(BIN)/parkhub seed demo --if-empty
	@echo "ParkHub on http://$(PARKHUB_HOST):$(PARKHUB_PORT)/graphql (API and worker); Ctrl-C stops both."
	$(BIN)/parkhub dev

test: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_ARGS)

bench: bootstrap
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: bootstrap
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: bootstrap
	$(BIN)/parkhub schema export
