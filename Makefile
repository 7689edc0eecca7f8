# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test check test-slow lint figures clean

setup: $(STAMP)

# torch is pinned by constraints.txt (the CPU build here); pyproject.toml keeps a range so GPU
# users keep their own build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,ray,faiss,lora]'
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

# docs/RESULTS.md's curves, drawn again from the committed runs (tint curve, runs left as they are).
V1 := benchmarks/glyphs-val-curve-1shot
figures: $(STAMP)
	$(VENV)/bin/tint curve --leave-runs --out $(VENV)/figures/images --x setup.generation.num \
	    --runs $(V1)-num10,benchmarks/glyphs-val-recipe-1shot,$(V1)-num160,$(V1)-num640 \
	    --methods tint,ti,tint+retrieval,tint@pretrained,ti@pretrained,tint+retrieval@pretrained
	cp $(VENV)/figures/images/curve.png docs/results-curve-images-1shot.png
	$(VENV)/bin/tint curve --leave-runs --out $(VENV)/figures/steps --x setup.distill.steps \
	    --runs $(V1)-steps100,$(V1)-steps200,benchmarks/glyphs-val-recipe-1shot,$(V1)-steps800,$(V1)-steps1600 \
	    --methods tint,ti,base,tint+retrieval,tint@pretrained,ti@pretrained,base@pretrained,tint+retrieval@pretrained
	cp $(VENV)/figures/steps/curve.png docs/results-curve-steps-1shot.png
	$(VENV)/bin/tint curve --leave-runs --out $(VENV)/figures/pool --x base_pool \
	    --runs $(V1)-pool750,$(V1)-pool3000,benchmarks/glyphs-val-recipe-1shot \
	    --methods base,tint+retrieval,base@pretrained,tint+retrieval@pretrained
	cp $(VENV)/figures/pool/curve.png docs/results-curve-pool-1shot.png

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

clean:
	rm -rf $(VENV) demo-output .pytest_cache
