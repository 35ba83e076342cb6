# Two commands do everything on a fresh clone (Python 3.11, no GPU needed):
#   make demo   the main job
#   make test   the tests (what CI runs)
# Both create or reuse the git-ignored .venv in this folder.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test extension requirements clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, on its own: the pinned CPU build, so nothing pulls a CUDA build in.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[engine,test,cluster]"
	touch $(STAMP)

# The offline main job: build the extension zip, install it into a private headless Blender (the bpy module),
# import a photogen sample as a 3D scene, apply an official edit and preview it (no model weights, no network).
DEMO_SAMPLE ?= ../shared/photogen/car
DEMO_EDIT ?= edit_002

demo: setup
	$(PY) tools/extension.py build --output-dir dist
	$(PY) tools/demo_preview.py --zip dist --sample $(DEMO_SAMPLE) --edit $(DEMO_EDIT) --output out/demo/preview.png

test: setup
	$(PY) -m ruff check .
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

extension: setup
	$(PY) tools/extension.py build --output-dir dist

# engine_requirements.txt (shipped in the zip, installed by Set Up Engine) from pyproject.toml's pins; the build
# refuses a stale one.
requirements: setup
	$(PY) tools/extension.py requirements

clean:
	rm -rf dist build .pytest_cache
