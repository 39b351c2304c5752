.PHONY: dev test setup
setup:
	@./scripts/setup.sh

dev: setup
	@./scripts/demo.sh

test: setup
	@.venv/bin/python -m pytest -q $(PYTEST_ARGS)
