# gridbus. `make run`: the services with a demo city. `make test`: every test on real servers.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen
PROTOS := $(shell find protos -name '*.proto')

.PHONY: help deps infra protos web browser docs migrate run unit test bench soak validate-deploy clean

help:
	@echo "make run    start RabbitMQ/PostGIS if needed, migrate, run the services, the console and the demo city"
	@echo "make unit   run the unit tests (pure code, no database, no broker) in seconds"
	@echo "make test   the unit tests with no servers, then every test against the real RabbitMQ and PostGIS (and the console in Chromium)"
	@echo "make web    build the console's page (Node.js 20.19+, packages from its package-lock.json)"
	@echo "make bench  Locate, Report, the whole path to dispatch, credit, importing a real city, the console, the officer's app and sensor alarms, against raw PostGIS, RabbitMQ (AMQP and MQTT), Chromium and a blank page"
	@echo "make validate-deploy  check docker-compose.yml and k8s/ offline"
	@echo "make soak   report at a fixed rate for 10 minutes; print latency and memory over time"

$(VENV)/.installed: pyproject.toml
	python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# The venv finds the generated protos and the demo/tests packages without PYTHONPATH.
	printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/gridbus-paths.pth"
	touch $@

deps: $(VENV)/.installed

# PostGIS from apt when missing; PostgreSQL and RabbitMQ started when down.
infra:
	bash scripts/infra.sh

gen/.built: $(PROTOS) $(VENV)/.installed
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen --pyi_out=gen $(PROTOS)
	touch $@

protos: gen/.built

# The console's page, built by Vite from the packages pinned in its package-lock.json.
WEB := services/console/web
$(WEB)/dist/index.html: $(WEB)/package.json $(WEB)/package-lock.json $(WEB)/index.html $(WEB)/officer.html \
		$(WEB)/vite.config.js $(shell find $(WEB)/src $(WEB)/officer $(WEB)/public -type f 2>/dev/null)
	bash scripts/web.sh

web: $(WEB)/dist/index.html

# Debian's Chromium for the console's browser tests and benchmark.
browser:
	bash scripts/browser.sh

# The event catalogue, generated from protos/**/events.proto, and the incident actions in
# docs/service-contracts.md, from the action table in services/incidents/domain.py.
docs: deps
	$(PY) scripts/event_catalogue.py
	$(PY) scripts/action_table.py
	$(PY) scripts/access_table.py

migrate: deps protos infra
	$(VENV)/bin/gridbus migrate

# Runs until Ctrl-C, so the console shows the demo city (RUN_ARGS= to end after the demo's cases).
RUN_ARGS ?= --keep-running
run: migrate web
	$(PY) -m demo.run $(RUN_ARGS)

# Unit tests with the servers' addresses on closed ports: a unit test that reaches for a server fails.
NO_SERVERS := GRIDBUS_DATABASE_URL=postgresql+psycopg://root@127.0.0.1:1/x GRIDBUS_AMQP_URI=amqp://guest:guest@127.0.0.1:1/ \
	GRIDBUS_TEST_ADMIN_DSN=postgresql://root@127.0.0.1:1/postgres GRIDBUS_TEST_AMQP_HOST=guest:guest@127.0.0.1:1

unit: deps protos
	$(NO_SERVERS) $(PY) -m pytest -m unit $(PYTEST_ARGS)

# The unit set first, with no servers (which proves it needs none), then every test on the real ones.
test: deps protos infra web browser
	$(NO_SERVERS) $(PY) -m pytest -m unit -q
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps protos infra web browser
	$(PY) bench/bench_locate.py $(if $(BENCH_CITY),--city $(BENCH_CITY))
	$(PY) bench/bench_incidents.py
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_credit.py
	$(PY) bench/bench_import.py
	$(PY) bench/bench_console.py
	$(PY) bench/bench_officer.py
	$(PY) bench/bench_sensors.py
	$(PY) bench/bench_emergencies.py

# docker-compose.yml and k8s/ checked offline (also part of make test).
validate-deploy: deps
	$(PY) -m deploy.validate

# A bounded soak (10 minutes at 20 reports/s by default; SOAK_ARGS="--minutes 60 --rate 50"). Not in CI.
soak: deps protos infra
	$(PY) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf gen .pytest_cache services/console/web/dist
