.PHONY: dev test setup
setup:
	@./scripts/setup.sh

dev: setup
	@.venv/bin/lmops dev

test: setup
	@./scripts/install_browser.sh >/dev/null
	@.venv/bin/python -m pytest -q $(PYTEST_ARGS)
