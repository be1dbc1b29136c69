# The two commands of the README: `make run` (set up, then open the studio on the built-in demo)
# and `make test` (set up, then run the whole test suite). Everything else is a convenience.
VENV := .venv/bin

.PHONY: setup lock lock-upgrade run test bench dataset screenshots clean

setup:
	@bash scripts/setup.sh

# Regenerates requirements.lock from pyproject.toml's ranges (every package exact, hash-checked, for
# Linux/macOS/Windows alike), keeping the current pins that still fit; `make lock-upgrade` takes the newest
# versions that fit instead. Commit the lock with pyproject.toml once `make test` passes.
LOCK_COMPILE := .uv/bin/uv pip compile pyproject.toml --extra test --universal --generate-hashes \
	--python-version 3.11 -o requirements.lock
# The generator's lock: the app's lock as constraints, plus the dataset extra.
DATASET_LOCK_COMPILE := .uv/bin/uv pip compile pyproject.toml --extra test --extra dataset --universal \
	--generate-hashes --python-version 3.11 --constraint requirements.lock -o requirements-dataset.lock

lock: setup
	$(LOCK_COMPILE)
	$(DATASET_LOCK_COMPILE)

lock-upgrade: setup
	$(LOCK_COMPILE) --upgrade
	$(DATASET_LOCK_COMPILE)

run: setup
	$(VENV)/nlmm-studio

test: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/python -m pytest -q

bench: setup
	$(VENV)/nlmm bench kernels

# Rebuilds resources/builtin (speech engines, fonts, handwriting, rooms: resources/builtin/README.md). The generator's
# own packages go into .venv-dataset from requirements-dataset.lock, `make lock` keeps both locks in step.
dataset: setup
	bash scripts/setup_dataset.sh
	.venv-dataset/bin/python scripts/make_builtin_dataset.py
	.venv-dataset/bin/python scripts/make_font_atlases.py

screenshots: setup
	bash scripts/screenshots.sh --out docs/screenshots
	bash scripts/screenshots.sh --dark --out docs/screenshots/dark

clean:
	rm -rf .venv .venv-dataset .uv .pytest_cache
