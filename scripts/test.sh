#!/usr/bin/env bash
# The tests, after scripts/setup.sh: the Rust crate's, then the Python package built into a
# virtual environment (target/python-venv) and its pytest suite. Under CI=true a missing GPU
# adapter fails the GPU tests of both instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
# Mesa's Vulkan loader prints two XDG_RUNTIME_DIR lines on every device a test opens when the
# variable is missing (servers, containers): give the test processes a private one.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo test --release

venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# pip builds the binding crate with maturin (release), sharing target/ with cargo above.
# The test extra brings PyTorch, JAX and Deepwave for the differentiable operator's tests:
# PyTorch from PyPI comes with its CUDA libraries, about 3 GB to download and 6 GB installed
# (95 s on a 90 MB/s link); once, the virtual environment keeps them.
"$venv/bin/python" -m pip install -q --disable-pip-version-check "./python[test]"
# From the repository root, so `import gpurevolve` finds the installed package and not the
# Python sources under python/.
"$venv/bin/python" -m pytest -q python/tests
