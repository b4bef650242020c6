# gridbus. `make run`: the services with a demo city. `make test`: every test on real servers.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen
PROTOS := $(shell find protos -name '*.proto')

.PHONY: help deps infra protos migrate run test bench clean

help:
	@echo "make run    start RabbitMQ/PostGIS if needed, migrate, run the services and the demo city"
	@echo "make test   run the tests against the real RabbitMQ and PostGIS"
	@echo "make bench  measure Locate against raw PostGIS on this machine"

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

migrate: deps protos infra
	$(VENV)/bin/gridbus migrate

run: migrate
	$(PY) -m demo.run

test: deps protos infra
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps protos infra
	$(PY) bench/bench_locate.py

clean:
	rm -rf gen .pytest_cache
