#!/usr/bin/env bash
# Everything a fresh Debian/Ubuntu machine needs to build gpurevolve and run its GPU code:
#   - a Vulkan loader and, when no Vulkan driver is installed, Mesa's software driver (lavapipe),
#     so the WGSL kernels really execute, on the CPU, without a GPU;
#   - Python 3 with venv, for the Python package (python/) and its tests;
#   - a Rust toolchain (rustup) when cargo is missing;
#   - with --mpi: OpenMPI (mpirun, and its headers) and libclang, for the `mpi` feature.
# Idempotent: it installs nothing that is already there.
set -euo pipefail

want_mpi=false
for arg in "$@"; do
    case "$arg" in
        --mpi) want_mpi=true ;;
        *) echo "setup: unknown option $arg (the one option is --mpi)" >&2; exit 2 ;;
    esac
done

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

have_vulkan_loader() { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; }
have_vulkan_driver() {
    # An ICD manifest is how the loader finds a driver (NVIDIA's, AMD's, Intel's or Mesa's).
    local d
    for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
        compgen -G "$d/*.json" >/dev/null && return 0
    done
    [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]
}

if ! have_vulkan_loader || ! have_vulkan_driver; then
    if command -v apt-get >/dev/null; then
        echo "setup: installing the Vulkan loader and Mesa's software Vulkan driver" >&2
        export DEBIAN_FRONTEND=noninteractive
        sudo_if_needed apt-get update -qq
        sudo_if_needed apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    else
        echo "setup: no Vulkan driver found and no apt-get; install a Vulkan driver and loader" >&2
        exit 1
    fi
fi

# Python 3 with venv and pip: the binding is built by maturin inside a virtual environment.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if command -v apt-get >/dev/null; then
        echo "setup: installing Python 3 with venv" >&2
        export DEBIAN_FRONTEND=noninteractive
        sudo_if_needed apt-get update -qq
        sudo_if_needed apt-get install -y -qq python3 python3-venv >/dev/null
    else
        echo "setup: Python 3 with the venv module is needed for the Python package" >&2
        exit 1
    fi
fi

# MPI for the `mpi` feature: rsmpi builds against the system's MPI (its bindings are
# generated with libclang at build time).
if $want_mpi && ! { command -v mpirun >/dev/null && command -v mpicc >/dev/null &&
    ldconfig -p 2>/dev/null | grep -q 'libclang'; }; then
    if command -v apt-get >/dev/null; then
        echo "setup: installing OpenMPI and libclang for the mpi feature" >&2
        export DEBIAN_FRONTEND=noninteractive
        sudo_if_needed apt-get update -qq
        sudo_if_needed apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev >/dev/null
    else
        echo "setup: --mpi needs an MPI (mpirun, mpicc) and libclang; install them" >&2
        exit 1
    fi
fi

# The README's commands put ~/.cargo/bin on PATH, so a toolchain installed here is used at once.
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup: installing Rust with rustup" >&2
    if ! command -v curl >/dev/null; then
        sudo_if_needed apt-get install -y -qq curl ca-certificates build-essential >/dev/null
    fi
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
        --component rustfmt,clippy
fi
