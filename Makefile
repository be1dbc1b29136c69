# The two commands of the README: `make run` (set up, then open the studio on the built-in demo)
# and `make test` (set up, then run the whole test suite). Everything else is a convenience.
VENV := .venv/bin

.PHONY: setup run test bench screenshots clean

setup:
	@bash scripts/setup.sh

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
	rm -rf .venv .pytest_cache
