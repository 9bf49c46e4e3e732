# Gauntlet: `make demo` runs the embedded demo, `make test` runs the whole suite.
# Both set up everything they need from nothing (virtualenv, packages, database).

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
RUNTIME := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-fast bench migrate tools clean

$(PY):
	"$$(sh scripts/find-python)" -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The demo needs only the runtime packages; the tests add their tools.
$(RUNTIME): requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $(RUNTIME)

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $(RUNTIME) $(STAMP)

migrate: $(RUNTIME)
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo

# Debian's Chromium drives the browser tests (never a downloaded browser build);
# Debian's docker-compose checks docker-compose.yml (no Docker engine is needed for that).
tools:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test: $(STAMP) tools
	sh scripts/ensure-database
	$(PY) manage.py makemigrations --check --dry-run >/dev/null
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not browser and not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .hypothesis
