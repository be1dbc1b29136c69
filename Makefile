# The two commands of the README: `make run` (set up, then open the studio on the built-in demo)
# and `make test` (set up, then run the whole test suite). Everything else is a convenience.
VENV := .venv/bin

.PHONY: setup lock run test bench screenshots clean

setup:
	@bash scripts/setup.sh

# Regenerates requirements.lock from pyproject.toml's ranges (newest versions that fit them; every
# package exact, hash-checked, for Linux/macOS/Windows alike). Commit it once `make test` passes.
lock: setup
	.uv/bin/uv pip compile pyproject.toml --extra test --universal --generate-hashes \
	  --python-version 3.11 --upgrade -o requirements.lock

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
