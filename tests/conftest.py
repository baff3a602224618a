"""Strict JAX for every test: implicit rank promotion raises, float64 only where a test asks."""

import os

# Eight host devices so the data-parallel tests can build a real 8-way mesh on a CPU; set before
# JAX initialises its backend. Single-device code is unaffected (it uses jax.devices()[0]).
# LLVM optimisation level 0 for the generated code: compilation, mostly LLVM's, is most of the
# suite's time, and the tests check results, never speed (test_pfn and the SR model tests:
# 157 s -> 114 s). XLA's own HLO passes (fusion, simplification) run as usual.
# Fusions emitted by XLA:CPU's elemental emitter rather than its MLIR fusion emitters: the same
# fused HLO, half the compile time or less (a float64 LAD solve at n = 70, d = 5: 8.5 s -> 4.0 s
# with the vertex polish, 3.1 s -> 1.0 s without, same objective to the last digit).
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
    " --xla_cpu_use_fusion_emitters=false",
)

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run the test body with float64 enabled, then restore the default."""
    with jax.enable_x64(True):
        yield
