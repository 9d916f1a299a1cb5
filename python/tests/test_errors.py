"""Every class of bad input is a Python exception that says what to change; the interpreter
survives and the next call works."""

import numpy as np
import pytest

import gpurevolve as gr
from conftest import SMALL_H as H, SMALL_SHAPE as SHAPE, forward


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(vp=np.full(30, 2000.0)), "shape"),
        (dict(vp="nan"), "velocity"),
        (dict(vp="negative"), "velocity"),
        # A grid smaller than the stencil (with points inside it).
        (dict(vp=np.full((4, 4), 2000.0), sources=np.array([[10.0, 10.0]]),
              receivers=np.array([[20.0, 10.0]]), space_order=8), "stencil"),
        (dict(nt=0), "nt"),
        (dict(nt=1), "nt"),
        (dict(dt=1.0), "CFL"),
        (dict(spacing=-1.0), "spacing"),
        (dict(space_order=6), "order"),
        (dict(receivers=np.array([[1e5, 20.0]])), "receiver"),
        (dict(sources=np.array([[10.0, -50.0]])), "source"),
        (dict(sources=np.array([[10.0, 20.0, 30.0]])), r"\(count, 2\)"),
        (dict(sources=np.zeros((0, 2))), r"\(count, 2\)"),
        (dict(boundary="pml"), "boundary"),
        (dict(boundary_velocity=-5.0), "velocity"),
        (dict(f0=0.0), "f0"),
    ],
)
def test_bad_forward_input_is_a_value_error(device, case, change, match):
    vp, common = case
    vp = change.pop("vp", vp)
    if isinstance(vp, str):
        vp = vp_with(case[0], np.nan if vp == "nan" else -1.0)
    with pytest.raises(ValueError, match=match):
        forward(device, vp, common, **change)
    # The next call works.
    assert np.isfinite(forward(device, case[0], common)).all()


def vp_with(vp, value):
    bad = vp.copy()
    bad[4, 5] = value
    return bad


@pytest.mark.parametrize("vp", [np.full(SHAPE, 2000, dtype=np.int64), [[2000.0] * 20] * 30])
def test_arrays_of_the_wrong_type_are_type_errors(device, case, vp):
    _, common = case
    with pytest.raises(TypeError, match="float32 or float64"):
        forward(device, vp, common)


def test_nt_and_tmax_together_are_refused(device, case):
    vp, common = case
    with pytest.raises(ValueError, match="not both"):
        device.forward(vp, nt=50, tmax=0.1, **common)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(observed="short"), ValueError, "does not match"),
        (dict(observed="2d"), ValueError, r"\(shots, nt, receivers\)"),
        (dict(observed="nan"), ValueError, "not finite"),
        (dict(snaps=0), ValueError, "at least 1"),
        (dict(snaps=-3), ValueError, "at least 1"),
        (dict(snaps="most"), ValueError, "all"),
        (dict(snaps=2.5), ValueError, "int"),
        (dict(schedule="best"), ValueError, "levels"),
        (dict(batch=0), ValueError, "batch.*at least 1"),
        (dict(batch=-2), ValueError, "batch"),
        (dict(batch="many"), ValueError, "auto"),
        (dict(batch=1.5), TypeError, "batch"),
        # Two shots sharing one snapshot's memory: each needs at least one.
        (dict(batch=2, snaps=1), ValueError, "snaps"),
        (dict(checkpoint_format="f16"), ValueError, "bf16"),
        (dict(checkpoint_format="bf16", placement="optimal"), ValueError, "costs"),
        (dict(checkpoint_format="bf16", batch="auto"), ValueError, "batch"),
        (dict(checkpoint_format="int8", snaps=None, store_all=True), ValueError, "exact reference"),
        # Budgets that hold no checkpoint: can never fit.
        (dict(snaps=5, device_memory=1, host_memory=1), MemoryError, "fit"),
    ],
)
def test_bad_gradient_input_raises_what_it_should(device, case, change, error, match):
    vp, common = case
    observed = forward(device, vp * 1.05, common)
    shape = observed.shape
    kind = change.pop("observed", None)
    if kind == "short":
        observed = observed[:, :, :-1]
    elif kind == "2d":
        observed = observed[0]
    elif kind == "nan":
        observed = observed.copy()
        observed[1, 7, 3] = np.nan
    with pytest.raises(error, match=match):
        device.gradient(vp, observed, **common, **change)
    misfit, grad, _ = device.gradient(vp, forward(device, vp * 1.05, common), **common)
    assert shape[0] == 2 and np.isfinite(misfit) and grad.shape == SHAPE


def test_a_missing_adapter_is_a_value_error():
    with pytest.raises(ValueError, match="no device 99"):
        gr.Device(devices=99)
