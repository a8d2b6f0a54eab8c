# The two commands a newcomer needs: `make run` and `make test`.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed

# Embedded defaults for the local stack and the test suite (DEBUG allows the dev-only
# secrets in project/settings.py; production sets DEBUG=0 and real secrets).
export DEBUG ?= 1

.PHONY: install run test lint shell bench drill clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

# The whole stack on loopback: local SQS (moto), Solapi sandbox, web, worker, beat,
# and Flower when a Redis is running. Ctrl-C stops everything.
run: install
	mkdir -p var
	set -a && . ./dev.env && set +a && $(BIN)/python manage.py migrate --noinput
	set -a && . ./dev.env && set +a && $(BIN)/python manage.py seed_demo
	set -a && . ./dev.env && set +a && exec $(BIN)/python -m project.devstack

# A Django shell wired to the running dev stack (same broker, sandbox and database).
shell: install
	set -a && . ./dev.env && set +a && $(BIN)/python manage.py shell

test: install
	mkdir -p var
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m benchmarks.run_all

drill: install
	$(BIN)/python -m benchmarks.drill

clean:
	rm -rf $(VENV) var db.sqlite3
