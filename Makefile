# The only set-up a newcomer needs: `make serve` or `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# torch 2.13.0 is the CPU wheel this kind of machine holds; it must come before the project,
# or the project's torch range would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: serve test system-tools clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

serve: $(BIN)/.installed
	$(BIN)/python -m service --host $(HOST) --port $(PORT)

test: $(BIN)/.installed system-tools
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy --strict service tests bench
	$(BIN)/pytest -W error

# nginx for the deployment tests, chromium for the playground's browser test, an aarch64 cross
# compiler and qemu for the kernel's cross-architecture test; installed with apt-get where that
# is possible (root, Debian), else those tests say they are skipped
SYSTEM_TOOLS := nginx chromium gcc-aarch64-linux-gnu qemu-user
system-tools:
	@{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 && \
	command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_TOOLS); } >/dev/null 2>&1; } || \
	echo "note: some of $(SYSTEM_TOOLS) is not installed; their tests will be skipped"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
