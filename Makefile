# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test check test-slow lint clean

setup: $(STAMP)

# torch is pinned by constraints.txt (the CPU build here); pyproject.toml keeps a range so GPU
# users keep their own build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tint demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest -q

# The suite without its end-to-end, Ray and README-execution tests: the loop of editing and testing.
check: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not e2e and not ray and not readme"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

clean:
	rm -rf $(VENV) demo-output .pytest_cache
