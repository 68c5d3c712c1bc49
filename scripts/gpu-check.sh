#!/usr/bin/env bash
# The GPU check of issue 8, for a GPU machine with no network and no Rust toolchain.
#
#   scripts/gpu-check.sh [CELLINO_BINARY] [-- extra `cellino selftest` arguments]
#
# 1. Finds the CUDA runtime libraries (cuBLAS, cuBLASLt, cudart, cuRAND, cuDNN) of the machine's
#    PyTorch installation and puts them on LD_LIBRARY_PATH (never a stub libcuda: the real
#    libcuda.so.1 comes from the NVIDIA driver).
# 2. Runs `cellino selftest --device cuda` (op parity, 20-iteration training smoke run, ViT-S/16 and
#    ViT-L/16 throughput, batch 64, f32 and bf16).
# 3. If `python3 -c "import torch"` works, times the same work in PyTorch
#    (scripts/gpu_bench_torch.py) and prints one table with the cellino / torch ratios.
#
# The binary defaults to ./cellino next to this script, then target/cuda/{gpu,release}/cellino.
# The JSON results stay in $GPU_CHECK_OUT (default: a new temporary directory, printed at the end).
# Exit status: that of the selftest (non-zero when a parity check or the smoke run failed), or 2
# when the binary or the libraries cannot be found. Everything fits in about 5 minutes on an H100.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}
bin=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  bin=$1
  shift
fi
[ "${1:-}" = "--" ] && shift
extra=("$@")

die() {
  echo "gpu-check: $*" >&2
  exit 2
}

if [ -z "$bin" ]; then
  for c in "$here/cellino" "$here/../cellino" "$here/../target/cuda/gpu/cellino" "$here/../target/cuda/release/cellino"; do
    if [ -x "$c" ]; then
      bin=$c
      break
    fi
  done
fi
[ -n "$bin" ] || die "no cellino binary: pass its path, or put it next to this script (build it with cargo xtask cuda-build --profile gpu)"
[ -x "$bin" ] || die "$bin is not an executable file"

# --- CUDA libraries from the machine's PyTorch -------------------------------------------------
libdirs=()
add_dir() {
  case "$1" in */stubs | */stubs/*) return ;; esac # a stub driver would shadow the real one
  [ -d "$1" ] || return
  local d
  for d in "${libdirs[@]}"; do [ "$d" = "$1" ] && return; done
  libdirs+=("$1")
}
if command -v "$py" >/dev/null 2>&1; then
  # nvidia is a namespace package: every site-packages/nvidia folder.
  roots=$("$py" -c 'import nvidia, os; print("\n".join(os.path.realpath(p) for p in nvidia.__path__))' 2>/dev/null || true)
  while IFS= read -r root; do
    [ -n "$root" ] || continue
    for sub in cu13/lib cudnn/lib cublas/lib cuda_runtime/lib curand/lib nvjitlink/lib; do add_dir "$root/$sub"; done
  done <<<"$roots"
  # torch's own lib folder (some builds bundle the libraries there).
  tlib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null || true)
  [ -n "$tlib" ] && add_dir "$tlib"
fi
have_lib() {
  local d
  for d in "${libdirs[@]}"; do [ -e "$d/$1" ] && return 0; done
  ldconfig -p 2>/dev/null | grep -q "$1 " && return 0
  return 1
}
for lib in libcublas.so.13 libcublasLt.so.13 libcudart.so.13 libcurand.so.10 libcudnn.so.9; do
  if ! have_lib "$lib"; then
    echo "gpu-check: $lib not under PyTorch's nvidia packages; searching the file system" >&2
    found=$(timeout 60 find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name "$lib" -print 2>/dev/null |
      grep -v '/stubs/' | head -1 || true)
    [ -n "$found" ] && add_dir "$(dirname "$found")"
  fi
done
# Libraries carried by hand (e.g. libcurand.so.10 from .cuda/nvidia/cu13/lib when this PyTorch
# has none) may sit next to the binary or in scripts/lib.
for d in "$(dirname "$bin")" "$here/lib"; do
  compgen -G "$d/lib*.so*" >/dev/null && add_dir "$d"
done
ld_path=$(IFS=:; echo "${libdirs[*]}")
export LD_LIBRARY_PATH="${ld_path}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "gpu-check: binary $bin" >&2
echo "gpu-check: LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >&2
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
fi
missing=$(ldd "$bin" 2>/dev/null | grep 'not found' || true)
[ -z "$missing" ] || die "the binary cannot start, libraries not found:
$missing
(libcuda.so.1 comes from the NVIDIA driver; the others from PyTorch's nvidia-* wheels; a missing
libcurand.so.10 can be carried from the build machine's .cuda/nvidia/cu13/lib into scripts/lib/)"

# --- cellino selftest --------------------------------------------------------------------------
out=${GPU_CHECK_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}
mkdir -p "$out"
timeout 180 "$bin" selftest --device cuda --json "$out/cellino.json" "${extra[@]}" 2>"$out/cellino.stderr" |
  tee "$out/cellino.txt"
rc=${PIPESTATUS[0]}
tail -n 3 "$out/cellino.stderr" >&2
[ "$rc" -eq 124 ] && echo "gpu-check: cellino selftest ran past 180 s and was stopped" >&2

# --- the same work in PyTorch ------------------------------------------------------------------
if [ -f "$out/cellino.json" ] && "$py" -c 'import torch' >/dev/null 2>&1; then
  timeout 100 "$py" "$here/gpu_bench_torch.py" --cellino "$out/cellino.json" --out "$out/torch.json" --budget 4 \
    2>"$out/torch.stderr" | tee "$out/torch.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "gpu-check: the PyTorch benchmark failed:" >&2; tail -n 5 "$out/torch.stderr" >&2; }
else
  echo "gpu-check: no PyTorch comparison (no torch in $py, or no cellino JSON)" >&2
fi
echo "gpu-check: results in $out (cellino.json, torch.json, *.txt); selftest exit status $rc" >&2
exit "$rc"
