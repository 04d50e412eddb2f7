# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_ACCOUNTS ?= 500
# A year of raw data: each outcome's 90-day horizon, and the usage before it, is covered (learning from outcomes).
DEMO_DAYS ?= 365
# Score history: daily for the last DEMO_HISTORY_DAYS days (play effectiveness reads scores 30 and 90 days
# after a play), weekly before (each outcome's score at its horizon, for the preview's AUC and event lift).
DEMO_HISTORY_DAYS ?= 120
# The demo's people sign in to the pages with this password (admin@example.com, cs-manager@example.com, the CSMs).
DEMO_PASSWORD ?= healthscore-demo
export FLASK_APP := wsgi

.PHONY: install demo serve test test-unit lint bench bench-core bench-report bench-million bench-events bench-measures bench-ingest bench-sources bench-preview bench-watchlist bench-learning bench-suggestions bench-alerts bench-external bench-pages bench-pit clean bench-predictive

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## demo: install, migrate a SQLite database, seed demo data, train the churn model, score its year (daily
## for the last 120 days, weekly before), then serve on http://$(HOST):$(PORT) with the scheduler running beside it: a live
## feed writes today's usage into instance/inbox every minute, a file source pulls it, scores move
demo: install
	mkdir -p instance/inbox
	$(BIN)/flask db upgrade
	$(BIN)/flask demo seed --accounts $(DEMO_ACCOUNTS) --days $(DEMO_DAYS) --replace
	$(BIN)/flask demo users --password "$(DEMO_PASSWORD)"
	-$(BIN)/flask analysis train
	$(BIN)/flask demo history --days $(DEMO_DAYS) --daily-days $(DEMO_HISTORY_DAYS)
	$(BIN)/flask tokens create --user demo-admin --role admin --description "make demo" | tail -1 > instance/demo-token
	printf '[[sources]]\nname = "demo-inbox"\ntype = "files"\nfolder = "inbox"\nevery_minutes = 1\n' > instance/sources.toml
	@echo ""
	@echo "Demo ready. Open http://$(HOST):$(PORT)/sign-in and sign in with the password $(DEMO_PASSWORD) as"
	@echo "  admin@example.com (admin), cs-manager@example.com (manager) or a CSM:"
	@echo "  $$($(BIN)/flask users list | grep -o '^[^ <;]*@example.com' | grep -v '^cs-manager\|^admin@' | head -1)"
	@echo "Pages: /watchlist, /accounts/1, /my-work, /team (managers), /admin/users (admins)."
	@echo ""
	@echo "Every /api/v1 call needs the admin token written to instance/demo-token:"
	@echo "  $$(cat instance/demo-token)"
	@echo "Browse with the interactive page http://$(HOST):$(PORT)/api/v1/docs (Authorize, paste the token), or:"
	@echo "  curl -H \"Authorization: Bearer \$$(cat instance/demo-token)\" http://$(HOST):$(PORT)/api/v1/accounts?sort=score"
	@echo "Endpoints:"
	@echo "  http://$(HOST):$(PORT)/api/v1/watchlist                  the at-risk watchlist, ARR first, with why"
	@echo "  http://$(HOST):$(PORT)/api/v1/accounts?sort=score        accounts, worst health first"
	@echo "  http://$(HOST):$(PORT)/api/v1/accounts?band=poor         accounts in the poor band"
	@echo "  http://$(HOST):$(PORT)/api/v1/accounts/1                 one account: drivers and history"
	@echo "  http://$(HOST):$(PORT)/api/v1/jobs/runs                  the scheduler at work (feed, pull, score)"
	@echo "  http://$(HOST):$(PORT)/api/v1/watchlist?sort=expected_arr_at_risk   churn probability x ARR first"
	@echo "  http://$(HOST):$(PORT)/api/v1/analysis/event-lift        which event rules preceded churn"
	@echo "  POST http://$(HOST):$(PORT)/api/v1/scoring/suggestions   weights learned from outcomes (flask analysis evaluate)"
	@echo "  http://$(HOST):$(PORT)/api/v1/openapi.json               the OpenAPI document"
	@echo "The scheduler logs to instance/scheduler.log; Ctrl-C stops both."
	@echo ""
	HS_SOURCES_FILE=instance/sources.toml HS_DEMO_FEED_INBOX=instance/inbox \
		$(BIN)/flask scheduler run > instance/scheduler.log 2>&1 & SCHEDULER=$$!; \
	trap 'kill $$SCHEDULER 2>/dev/null' EXIT INT TERM; \
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## serve: serve the existing database without re-seeding
serve: install
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## test: install and run the whole suite (PostgreSQL tests run when the server is reachable)
test: install
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict scoring playbooks

## bench: the speed figures of the foundation issue (takes several minutes)
bench: install
	$(BIN)/python -m bench.run_bench

bench-core: install
	$(BIN)/python -m bench.run_bench --core-only

## bench-report: the suite (start-up, core, daily run first and steady at SIZE accounts, naive) written into
## docs/performance.md; SIZE=10000 runs small, ROUNDS (>= 5), BACKENDS, REUSE=1 keeps the seeded PostgreSQL db
SIZE ?= 100000
ROUNDS ?= 5
BACKENDS ?= postgresql,sqlite
bench-report: install
	$(BIN)/python -m bench.report --write --size $(SIZE) --rounds $(ROUNDS) --backends $(BACKENDS) $(if $(REUSE),--reuse)

## bench-million: the steady-state daily run on PostgreSQL at 1,000,000 accounts with 90 days of usage (about 62 M usage
## rows; seeding took 20 minutes on the loaded 2-core machine, REUSE=1 keeps a copy; each steady run about 4 minutes, so
## the 5 rounds of both kinds take most of an hour after it), added to the generated tables
bench-million: install
	$(BIN)/python -m bench.report --write --merge --only steady --size 1000000 --backends postgresql --rounds $(ROUNDS) \
		--pg-url postgresql://postgres@127.0.0.1:5432/hs_bench_million $(if $(REUSE),--reuse)

## bench-events: the scoring run with all default rules and plays against the run alone (100k accounts)
bench-events: install
	$(BIN)/python -m bench.events_bench

## bench-measures: the daily run with the 11 default measures against 30 (10 from product signals), 100k accounts
bench-measures: install
	$(BIN)/python -m bench.measures_bench

## bench-sources: SQL-source pull of 1,000,000 daily-usage rows (PostgreSQL to PostgreSQL)
bench-sources: install
	$(BIN)/python -m bench.sql_source_bench

## bench-ingest: push-API throughput (gunicorn, 2 workers, PostgreSQL on 127.0.0.1)
bench-ingest: install
	$(BIN)/python -m bench.ingest_bench

## bench-learning: fitting suggestions and the churn model on 100k accounts x 12 monthly observations,
## and the data assembly from raw tables on PostgreSQL (hs_bench_learning; --skip-db for the fit only)
bench-learning: install
	$(BIN)/python -m bench.learning_bench

## bench-suggestions: suggestions at 100k accounts x 12 months x 60 candidates (arrays), and twice on PostgreSQL (hs_bench_suggestions)
bench-suggestions: install
	$(BIN)/python -m bench.suggestions_bench

## bench-preview: the scoring-config preview with backtest over 100k accounts (PostgreSQL, hs_bench_preview)
bench-preview: install
	$(BIN)/python -m bench.preview_bench

## bench-watchlist: the default watchlist page under wrk (8 connections, 30 s) against a bare endpoint
## (100k accounts, 90 days of history, gunicorn 2 sync workers, PostgreSQL hs_bench_watchlist); REUSE=1 keeps the db
bench-watchlist: install
	$(BIN)/python -m bench.watchlist_bench $(if $(REUSE),--reuse)

## bench-pit: point-in-time account data (accounts_as_of against the plain accounts query) and judging 9M stored
## predictions, 100k demo accounts (PostgreSQL hs_bench_pit, then SQLite)
bench-pit: install
	$(BIN)/python -m bench.pit_bench

## bench-alerts: one dispatcher's alerts/s to a local Slack stand-in and SMTP server (5,000 each), and commit ->
## Slack request latency through the real scheduler (100 samples; PostgreSQL hs_bench_alerts, dropped at the end)
bench-alerts: install
	$(BIN)/python -m bench.alerts_bench

## bench-external: the health score's ROC AUC on ChurnSim's social product (the fightchurn package, in a venv of
## its own), loaded through the ingest API, next to 28-day counts and a logistic regression (docs/benchmark-external.md)
EXT_ACCOUNTS ?= 3000
EXT_OUT ?= instance/bench-external
bench-external: install
	$(BIN)/python -m bench.external.run --accounts $(EXT_ACCOUNTS) --out $(EXT_OUT) $(if $(EXT_CONFIG),--config $(EXT_CONFIG))

## bench-predictive: what the service learns from outcomes (suggestions, churn model, as of a cut date) on CDNOW,
## ChurnSim's crm6 and IBM Telco, loaded through the ingest API; later-period AUCs with intervals (docs/benchmark-predictive.md)
PRED_OUT ?= instance/bench-predictive
bench-predictive: install
	$(BIN)/python -m bench.predictive --out $(PRED_OUT) $(if $(PRED_DATASETS),--datasets $(PRED_DATASETS)) $(PRED_ARGS)

## bench-pages: the watchlist and account pages under wrk (8 connections) against their JSON endpoints, and what the
## account page transfers (demo portfolio, a year of scored history; PostgreSQL hs_bench_pages); REUSE=1 keeps the db
bench-pages: install
	$(BIN)/python -m bench.pages_bench $(if $(REUSE),--reuse)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis *.egg-info
