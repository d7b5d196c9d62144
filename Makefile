# The only set-up a newcomer needs: `make serve` or `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# torch 2.13.0 is the CPU wheel this kind of machine holds; it must come before the project,
# or the project's torch range would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: serve test stacks system-tools clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	$(MAKE) --no-print-directory stacks
	touch $@

# the recipe tests' references that pip cannot take from pyproject.toml: megatron-core's cp311
# wheel (it declares Python >= 3.12 but runs on 3.11), mup without its torchvision, and
# torchscale with fairscale (its decoder imports it) but without its timm pin, which pulls
# torchvision too (the test stands in for timm's forward-only drop_path)
MEGATRON ?= megatron-core==0.19.2
stacks:
	rm -rf $(VENV)/wheels
	$(BIN)/pip download --quiet --no-deps --ignore-requires-python "$(MEGATRON)" -d $(VENV)/wheels
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python $(VENV)/wheels/megatron_core-*.whl
	$(BIN)/pip install --quiet --no-deps "mup==1.0.0"
	$(BIN)/pip install --quiet --no-deps "torchscale==0.3.0" "fairscale==0.4.0"

# the fused kernel, rebuilt in place when its source changes (pip's editable install builds it
# once; a pulled change to _fastcore.c would otherwise run against the old build)
$(VENV)/.kernel: service/engines/_fastcore.c setup.py $(BIN)/.installed
	$(BIN)/python setup.py --quiet build_ext --inplace
	touch $@

serve: $(BIN)/.installed $(VENV)/.kernel
	$(BIN)/python -m service --host $(HOST) --port $(PORT)

test: $(BIN)/.installed $(VENV)/.kernel system-tools
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy --strict service tests bench
	$(BIN)/pytest -W error

# nginx for the deployment tests, chromium for the playground's browser test, an aarch64 cross
# compiler and qemu for the kernel's cross-architecture test, aria2 for the parallel-download
# test; installed with apt-get where that is possible (root, Debian), each group on its own, else
# those tests say they are skipped
APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
system-tools:
	@if ! { { command -v nginx || test -x /usr/sbin/nginx; } && command -v chromium; } >/dev/null 2>&1 && \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing nginx and chromium with apt-get (for the deployment and browser tests)"; \
	  { apt-get update -qq && $(APT) nginx chromium; } >/dev/null 2>&1 || echo "note: nginx or chromium did not install"; fi
	@if ! { command -v aarch64-linux-gnu-gcc && command -v qemu-aarch64; } >/dev/null 2>&1 && \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing an aarch64 cross compiler and qemu with apt-get (for the kernel's cross-architecture test)"; \
	  { apt-get update -qq && $(APT) gcc-aarch64-linux-gnu qemu-user; } >/dev/null 2>&1 || echo "note: the aarch64 cross tools did not install"; fi
	@if ! command -v aria2c >/dev/null 2>&1 && \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing aria2 with apt-get (for the parallel-download test)"; \
	  { apt-get update -qq && $(APT) aria2; } >/dev/null 2>&1 || echo "note: aria2 did not install"; fi
	@{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || \
	  echo "note: nginx or chromium is not installed; their tests will be skipped"
	@command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1 || \
	  echo "note: aarch64-linux-gnu-gcc or qemu-aarch64 is not installed; the cross-architecture test will be skipped"
	@command -v aria2c >/dev/null 2>&1 || \
	  echo "note: aria2c is not installed; the parallel-download test will be skipped"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
