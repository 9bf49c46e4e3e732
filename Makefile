# Gauntlet: `make demo` runs the embedded demo, `make test` runs the whole suite.
# Both set up everything they need from nothing (virtualenv, packages, database).

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
RUNTIME := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev
# The local model server (llama.cpp + SmolLM2-135M) lives in its own virtualenv, like an
# external Ollama would: the real-model test and DEMO_LOCAL_MODEL=1 start it from there.
LLM_VENV := .venv-llm
LLM_STAMP := $(LLM_VENV)/.installed
# llama-cpp-python ships only as source on PyPI: it is compiled (~15 min on 2 cores) into this
# wheelhouse once per machine and flag set. Not pip's wheel cache: that one is keyed by the
# source archive alone, so it would hand back a wheel built with other flags.
LLM_WHEELS ?= $(HOME)/.cache/gauntlet/llm-wheels
LLAMA_BUILD_JOBS ?= 2
# Portable x86-64 instructions rather than -march=native: a CPU (or VM) may advertise AMX or
# AVX-512 that the kernel does not let a process use, and the native build then dies with
# SIGILL on its first prompt.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
endif
# `DEMO_LOCAL_MODEL=1 make demo` (without DEMO_LOCAL_BASE_URL) brings the shipped model along.
DEMO_NEEDS := $(if $(filter 1,$(DEMO_LOCAL_MODEL)),$(if $(DEMO_LOCAL_BASE_URL),,$(LLM_STAMP)))

.PHONY: demo test test-fast bench migrate tools llm clean

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

demo: migrate $(DEMO_NEEDS)
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

llm: $(LLM_STAMP)

$(LLM_STAMP): requirements-llm.txt
	"$$(sh scripts/find-python)" -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install --quiet --upgrade pip
	@version="$$(sed -n 's/^llama-cpp-python\[server\]==//p' requirements-llm.txt)"; \
	flags="$$(printf '%s' "$(LLAMA_CMAKE_ARGS)" | cksum | cut -d' ' -f1)"; \
	wheels="$(LLM_WHEELS)/llama-cpp-python-$$version-$$flags"; \
	if ! ls "$$wheels"/llama_cpp_python-$$version-*.whl >/dev/null 2>&1; then \
	  echo "Compiling llama-cpp-python $$version into $$wheels (once per machine; ~15 minutes on 2 cores)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(LLAMA_BUILD_JOBS) \
	    $(LLM_VENV)/bin/pip wheel --quiet --no-cache-dir --no-deps -w "$$wheels" "llama-cpp-python==$$version" \
	    || exit 1; \
	fi; \
	$(LLM_VENV)/bin/pip install --quiet --find-links "$$wheels" --only-binary llama-cpp-python -r requirements-llm.txt
	touch $(LLM_STAMP)

test: $(STAMP) $(LLM_STAMP) tools
	sh scripts/ensure-database
	$(PY) manage.py makemigrations --check --dry-run >/dev/null
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not browser and not slow and not real_model" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(LLM_VENV) staticfiles .pytest_cache .hypothesis
