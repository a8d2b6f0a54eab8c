# The two commands a newcomer needs: `make run` and `make test`.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed

# Embedded defaults for the local stack and the test suite (DEBUG allows the dev-only
# secrets in project/settings.py; production sets DEBUG=0 and real secrets).
export DEBUG ?= 1

.PHONY: install run test test-clocks lint shell bench bench-load drill clean

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
	$(MAKE) --no-print-directory test-clocks

# The date-sensitive tests (marked `clock`) again with the whole session's clock moved
# (docs/testing.md): to the night window's edges in Korea (the next 21:00, 07:59 and 08:00
# from now) and a year ahead. A test that pins a calendar day or reads the real time fails here.
CLOCKS := 21:00 07:59 08:00 +365d
test-clocks: install
	mkdir -p var
	for clock in $(CLOCKS); do echo "TEST_CLOCK=$$clock"; TEST_CLOCK=$$clock $(BIN)/pytest -q -m clock || exit 1; done

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m benchmarks.run_all

# The everyday load of issue 18 over real HTTP (gunicorn, worker, beat, local SQS, sandbox):
# ~4 minutes of load (paced, no think time, burst), then the drain. `--quick` (35 s) while developing.
bench-load: install
	$(BIN)/python -m benchmarks.load

# The long drills: the tests marked `drill` (the suite skips them; each has a shorter form
# there), then the fault drills at full size.
drill: install
	mkdir -p var
	$(BIN)/pytest -m drill
	$(BIN)/python -m benchmarks.drill

clean:
	rm -rf $(VENV) var db.sqlite3
