# The two commands of the README: `make run` (set up, then open the studio on the built-in demo)
# and `make test` (set up, then run the whole test suite). Everything else is a convenience.
VENV := .venv/bin

.PHONY: setup lock lock-upgrade run test bench screenshots clean

setup:
	@bash scripts/setup.sh

# Regenerates requirements.lock from pyproject.toml's ranges (every package exact, hash-checked, for
# Linux/macOS/Windows alike), keeping the current pins that still fit; `make lock-upgrade` takes the newest
# versions that fit instead. Commit the lock with pyproject.toml once `make test` passes.
LOCK_COMPILE := .uv/bin/uv pip compile pyproject.toml --extra test --universal --generate-hashes \
	--python-version 3.11 -o requirements.lock

lock: setup
	$(LOCK_COMPILE)

lock-upgrade: setup
	$(LOCK_COMPILE) --upgrade

run: setup
	$(VENV)/nlmm-studio

test: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/python -m pytest -q

bench: setup
	$(VENV)/nlmm bench kernels

screenshots: setup
	bash scripts/screenshots.sh --out docs/screenshots
	bash scripts/screenshots.sh --dark --out docs/screenshots/dark

clean:
	rm -rf .venv .uv .pytest_cache
