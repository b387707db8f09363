# The README's commands, one for one. Each target installs what it is missing.
# Nothing here reaches AWS; every server it starts listens on 127.0.0.1 only.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# One shell per recipe, so a trap set at its top cleans up after every line.
.ONESHELL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
CFN_LINT := $(VENV)/bin/cfn-lint
# Defined before the rules that name them as prerequisites (make expands
# those when it reads the rule).
SAM := $(VENV)/bin/sam
# The demo shows the week after next Monday, local to the demo provider.
DEMO_TZ := Europe/Berlin

.PHONY: help demo sync-demo test e2e invoke bench build deploy lint lint-infra tools

help:
	@echo "make demo        throwaway Postgres, migrate, seed, print a provider's week"
	echo "make sync-demo   throwaway Postgres, fake Google Calendar on 127.0.0.1: connect, a remote event blocks a slot, a booking lands in Google"
	echo "make test        every test (a throwaway Postgres unless DATABASE_URL is set) + lint-infra + e2e"
	echo "make e2e         GraphQL end to end: AppSync simulator -> fn-api (cargo lambda watch) -> Postgres"
	echo "make invoke FN=fn-api EVENT=events/appsync/x.json   one local invocation on the seeded demo data"
	echo "make bench       feasibility (criterion), the 10,000-event feed vs Python icalendar, AWS cache/relay on moto, two-way sync latency, Lambda latency + cold start"
	echo "make build       sam build: every function for arm64, with zip sizes"
	echo "make deploy      sam deploy --guided (after make build)"
	echo "make lint        clippy, warnings are errors"
	echo "make lint-infra  cfn-lint template.yaml (installs cfn-lint into .venv)"

# Tools a fresh machine may lack. The Rust toolchain cannot be fetched here:
# say so plainly instead of failing later with "command not found".
tools:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup) first" >&2; exit 1; }
	command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found (needed for cfn-lint and free-port lookup)" >&2; exit 1; }

demo: tools
	@dir=$$(mktemp -d -t cal-demo-pg.XXXXXX)
	trap 'scripts/pg.sh stop "$$dir"' EXIT
	trap 'exit 130' INT TERM
	eval "$$(scripts/pg.sh start "$$dir")"
	echo "demo: throwaway PostgreSQL at $$DATABASE_URL"
	# Debug build: from clean it is about twice as quick as release on 2 cores.
	$(CARGO) build -p calctl
	calctl() { $(CARGO) run --quiet -p calctl -- "$$@"; }
	monday=$$(TZ=$(DEMO_TZ) date -d 'next monday' +%F)
	from=$$(date -u -d "TZ=\"$(DEMO_TZ)\" $$monday 00:00" +%FT%TZ)
	to=$$(date -u -d "TZ=\"$(DEMO_TZ)\" $$(date -d "$$monday + 7 days" +%F) 00:00" +%FT%TZ)
	calctl migrate
	calctl seed-demo
	echo "demo: slots of demo_provider (photographer), week of $$monday in $(DEMO_TZ): $$from .. $$to"
	calctl slots --user demo_provider --role photographer --from "$$from" --to "$$to"

# Two-way sync on one machine: a fake Google Calendar and our receiver on
# 127.0.0.1, the worker polling an in-memory queue, a throwaway Postgres.
sync-demo: tools
	@dir=$$(mktemp -d -t cal-sync-demo-pg.XXXXXX)
	trap 'scripts/pg.sh stop "$$dir"' EXIT
	trap 'exit 130' INT TERM
	eval "$$(scripts/pg.sh start "$$dir")"
	echo "sync-demo: throwaway PostgreSQL at $$DATABASE_URL; building the demo (debug, first time a few minutes)"
	$(CARGO) build -p fn-sync-worker --example sync_demo
	$(CARGO) run --quiet -p fn-sync-worker --example sync_demo

# The exit code is the tests': every suite runs even when an earlier one fails.
test: tools lint-infra lint-asl
	@dir=""; mdir=$$(mktemp -d -t cal-test-moto.XXXXXX)
	# One trap stops both servers (a second `trap … EXIT` would replace the first).
	trap '[[ -z "$$dir" ]] || scripts/pg.sh stop "$$dir"; scripts/moto.sh stop "$$mdir"' EXIT
	trap 'exit 130' INT TERM
	if [[ -z "$${DATABASE_URL:-}" ]]; then
	  dir=$$(mktemp -d -t cal-test-pg.XXXXXX)
	  eval "$$(scripts/pg.sh start "$$dir")"
	  echo "test: throwaway PostgreSQL at $$DATABASE_URL"
	else
	  echo "test: using DATABASE_URL from the environment"
	fi
	# DynamoDB, EventBridge and Step Functions through the real AWS SDK, against
	# a local moto server (127.0.0.1, dummy credentials): nothing reaches AWS.
	eval "$$(scripts/moto.sh start "$$mdir")"
	echo "test: moto at $$AWS_ENDPOINT_URL"
	# The independent ICS readers (Python icalendar, Node ical.js) that check
	# every attachment and feed the tests produce.
	PYTHON='$(PYTHON)' scripts/ics-readers.sh install
	if ! command -v cargo-nextest >/dev/null; then
	  echo "test: cargo-nextest missing; installing it (cargo install cargo-nextest --locked)"
	  $(CARGO) install cargo-nextest --locked || echo "test: install failed; falling back to cargo test" >&2
	fi
	rc=0
	if command -v cargo-nextest >/dev/null; then
	  # nextest does not run doctests: cargo test --doc runs them, first, so
	  # that the last summary printed is the one counting every test, and only
	  # for the crates that have some (an empty doc-test run is noise).
	  doc_crates=$$(scripts/doc-test-crates.sh)
	  if [[ -n "$$doc_crates" ]]; then
	    $(CARGO) test --doc $$(printf -- '-p %s ' $$doc_crates) || rc=$$?
	  fi
	  $(CARGO) nextest run --workspace --no-fail-fast || { r=$$?; (( rc )) || rc=$$r; }
	else
	  $(CARGO) test --workspace --no-fail-fast || rc=$$?
	fi
	# The e2e goes last: its summary (node's test runner) closes the output,
	# after nextest's for the Rust tests. Same server, a database of its own.
	$(MAKE) e2e || { r=$$?; (( rc )) || rc=$$r; }
	exit $$rc

# GraphQL through the AppSync simulator to fn-api under cargo lambda watch, on
# Postgres (DATABASE_URL's server, else a throwaway one). Installs its npm
# packages (e2e/, npm ci) and cargo-lambda (.venv) when missing.
e2e: tools
	@CARGO='$(CARGO)' scripts/e2e.sh

# One local invocation: make invoke FN=fn-api EVENT=events/appsync/x.json
# (Postgres as for e2e, migrated and seeded with the demo provider).
invoke: tools
	@[[ -n "$(FN)" && -n "$(EVENT)" ]] || { echo "usage: make invoke FN=fn-api EVENT=events/appsync/NAME.json" >&2; exit 2; }
	CARGO='$(CARGO)' scripts/invoke.sh '$(FN)' '$(EVENT)'

bench: tools
	@$(CARGO) bench -p cal-core --bench feasibility
	# 50,000-VEVENT import over a year vs Python icalendar + recurring-ical-events
	# (installs both into .venv when missing); peak heap vs file size.
	PYTHON='$(PYTHON)' $(CARGO) bench -p cal-core --bench ics
	# The feed of a provider with 10,000 events, next to Python icalendar.
	PYTHON='$(PYTHON)' scripts/ics-readers.sh install
	if [[ -z "$${DATABASE_URL:-}" ]]; then
	  dir=$$(mktemp -d -t cal-bench-pg.XXXXXX)
	  trap 'scripts/pg.sh stop "$$dir"' EXIT
	  eval "$$(scripts/pg.sh start "$$dir")"
	fi
	$(CARGO) bench -p fn-feed --bench feed
	# Holds: throughput next to single-row INSERTs, and a 200-way race on one
	# slot (the throwaway server allows 300 connections).
	$(CARGO) bench -p cal-store --bench booking
	# Two-way sync, Google and Graph fakes: a remote change to bookable slots
	# and a booking to the remote calendar, through the receivers over HTTP,
	# a queue stand-in and the worker polling it (p50/p95; p95 <= 5 s).
	$(CARGO) bench -p fn-sync-worker --bench sync
	# The AWS adapters against moto and PostgreSQL: slots from the DynamoDB cache
	# vs the engine, and outbox relay events/s onto an EventBridge bus. A
	# subshell: its own trap must not replace the Postgres one.
	(
	  if [[ -z "$${AWS_ENDPOINT_URL:-}" ]]; then
	    mdir=$$(mktemp -d -t cal-bench-moto.XXXXXX)
	    trap 'scripts/moto.sh stop "$$mdir"' EXIT
	    menv=$$(scripts/moto.sh start "$$mdir")
	    eval "$$menv"
	  fi
	  $(CARGO) bench -p cal-aws --bench aws
	)
	target=$$($(CARGO) metadata --format-version 1 --no-deps | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
	echo "bench: results (estimates.json per benchmark; the next run compares against them) in $$target/criterion/"
	# The Lambda section: fn-api's warm latency through cargo lambda watch and
	# every function's cold start (release builds; a database of its own).
	CARGO='$(CARGO)' PYTHON='$(PYTHON)' scripts/lambda-bench.sh

CARGO_LAMBDA := $(VENV)/bin/cargo-lambda

$(CARGO_LAMBDA): $(CFN_LINT)
	@echo "installing cargo-lambda and ziglang into $(VENV) (pip)"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda ziglang

# sam build: every function of template.yaml cross-compiled for arm64 with
# cargo-lambda (zig from PyPI), then each function's zipped size, which must
# stay under 10 MB. SAM marks its Rust support as a beta feature.
build: tools $(SAM) $(CARGO_LAMBDA)
	@export PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0
	# sam finds cargo-lambda and zig (python -m ziglang) through the first
	# python3 on PATH: .venv's, which has both.
	started=$$SECONDS
	$(SAM) build --beta-features --template-file template.yaml
	echo "build: sam build took $$(( SECONDS - started )) s"
	# Every AWS::Serverless::Function of the template, not just those sam left
	# a directory for: a missing bootstrap is a failure.
	ids=$$(awk '/^  [A-Za-z0-9]+:$$/ { id = substr($$1, 1, length($$1) - 1) } /^    Type: AWS::Serverless::Function$$/ { print id }' template.yaml)
	[[ -n "$$ids" ]] || { echo "build: no AWS::Serverless::Function in template.yaml" >&2; exit 1; }
	status=0
	for id in $$ids; do
	  dir=.aws-sam/build/$$id
	  if [[ ! -f "$$dir/bootstrap" ]]; then
	    printf '%-28s MISSING %s/bootstrap\n' "$$id" "$$dir"; status=1; continue
	  fi
	  zip=$$(mktemp --suffix=.zip); rm -f "$$zip"
	  (cd "$$dir" && $(PYTHON) -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED); z.write("bootstrap"); z.close()' "$$zip")
	  size=$$(stat -c %s "$$zip"); rm -f "$$zip"
	  verdict=ok; (( size <= 10 * 1024 * 1024 )) || { verdict="OVER 10 MB"; status=1; }
	  arch=$$(file -b "$$dir/bootstrap" 2>/dev/null | grep -o 'ARM aarch64' || echo '?')
	  printf '%-28s bootstrap %6d KiB  zip %6d KiB  %-12s %s\n' "$$id" $$(( $$(stat -c %s "$$dir/bootstrap") / 1024 )) $$(( size / 1024 )) "$$arch" "$$verdict"
	done
	exit $$status

# The first deploy asks for the parameters (README, Deployment) and saves them.
deploy: build
	@SAM_CLI_TELEMETRY=0 $(SAM) deploy --guided --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND

lint: tools
	@$(CARGO) clippy --workspace --all-targets -- -D warnings

$(CFN_LINT):
	@echo "creating $(VENV) and installing cfn-lint into it (pip)"
	$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed (Debian: apt-get install -y python3-venv)" >&2; exit 1; }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'cfn-lint>=1.58,<2'

$(SAM): $(CFN_LINT)
	@echo "installing aws-sam-cli into $(VENV) (pip, about half a minute)"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'aws-sam-cli>=1.170,<2'

# Offline: cfn-lint, then SAM's own validation with dummy credentials (it
# needs a region, not an account; nothing is sent).
lint-infra: $(CFN_LINT) $(SAM)
	@$(CFN_LINT) template.yaml
	SAM_CLI_TELEMETRY=0 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
	  $(SAM) validate --lint --template-file template.yaml --region us-east-1
	echo "lint-infra: template.yaml ok"

# Step Functions definitions (infra/statemachines/*.asl.json) through
# asl-validator 4, installed from infra/package-lock.json into infra/node_modules.
# Their ${...} DefinitionSubstitutions sit only in Parameters (Resource is the
# literal lambda:invoke ARN), so the files validate as they are.
.PHONY: lint-asl
lint-asl:
	@command -v npm >/dev/null || { echo "npm not found (needed for asl-validator): install Node.js 18+" >&2; exit 1; }
	[[ -x infra/node_modules/.bin/asl-validator ]] || npm ci --prefix infra --no-audit --no-fund --loglevel=error
	cd infra
	for f in statemachines/*.asl.json; do npx --no -- asl-validator --json-path "$$f"; done
