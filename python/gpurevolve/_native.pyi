# Type stubs of the native module, for editors and type checkers. The docstrings live in the
# Rust sources (python/src/) and show in help().
import os
from typing import Any, Callable, Iterator, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

FloatArray = npt.NDArray[Union[np.float32, np.float64]]
Progress = Callable[[int, int], Any]

class GpuError(RuntimeError): ...

class Device:
    def __init__(
        self,
        devices: Union[None, int, Sequence[int], Literal["all"]] = None,
        software: bool = False,
    ) -> None: ...
    @property
    def adapter(self) -> str: ...
    @property
    def is_software(self) -> bool: ...
    def forward(
        self,
        vp: FloatArray,
        spacing: float,
        sources: FloatArray,
        receivers: FloatArray,
        f0: float = 10.0,
        nt: Optional[int] = None,
        tmax: Optional[float] = None,
        dt: Optional[float] = None,
        space_order: int = 8,
        nbl: int = 20,
        boundary: Literal["cpml", "sponge"] = "cpml",
        boundary_velocity: Optional[float] = None,
        progress: Optional[Progress] = None,
    ) -> FloatArray: ...
    def measure_costs(
        self,
        vp: FloatArray,
        spacing: float,
        sources: FloatArray,
        receivers: FloatArray,
        f0: float = 10.0,
        nt: Optional[int] = None,
        tmax: Optional[float] = None,
        dt: Optional[float] = None,
        space_order: int = 8,
        nbl: int = 20,
        boundary: Literal["cpml", "sponge"] = "cpml",
        boundary_velocity: Optional[float] = None,
        disk: Union[None, str, "os.PathLike[str]"] = None,
        batch: Union[None, int, Literal["auto"]] = None,
        checkpoint_format: Literal["f32", "bf16", "int8"] = "f32",
    ) -> List[float]: ...
    def gradient(
        self,
        vp: FloatArray,
        observed: FloatArray,
        spacing: float,
        sources: FloatArray,
        receivers: FloatArray,
        f0: float = 10.0,
        dt: Optional[float] = None,
        space_order: int = 8,
        nbl: int = 20,
        boundary: Literal["cpml", "sponge"] = "cpml",
        boundary_velocity: Optional[float] = None,
        snaps: Union[None, int, Literal["all"]] = None,
        store_all: bool = False,
        schedule: Literal["levels", "revolve", "classic"] = "levels",
        placement: Literal["multistage", "optimal"] = "multistage",
        costs: Optional[Sequence[float]] = None,
        until_quiet: Optional[float] = None,
        device_memory: Optional[int] = None,
        host_memory: Optional[int] = None,
        disk: Union[None, str, "os.PathLike[str]"] = None,
        disk_memory: Optional[int] = None,
        batch: Union[None, int, Literal["auto"]] = None,
        checkpoint_format: Literal["f32", "bf16", "int8"] = "f32",
        progress: Optional[Progress] = None,
    ) -> Tuple[float, FloatArray, dict]: ...
    def record(
        self,
        vp: FloatArray,
        spacing: float,
        amplitudes: FloatArray,
        sources: FloatArray,
        receivers: FloatArray,
        dt: float,
        f0: float,
        space_order: int = 8,
        nbl: int = 20,
        boundary: Literal["cpml", "sponge"] = "cpml",
        boundary_velocity: Optional[float] = None,
        snaps: Union[None, int, Literal["all"]] = None,
        store_all: bool = False,
        schedule: Literal["levels", "revolve", "classic"] = "levels",
        placement: Literal["multistage", "optimal"] = "multistage",
        costs: Optional[Sequence[float]] = None,
        device_memory: Optional[int] = None,
        host_memory: Optional[int] = None,
        disk: Union[None, str, "os.PathLike[str]"] = None,
        disk_memory: Optional[int] = None,
        batch: Union[None, int, Literal["auto"]] = None,
        checkpoint_format: Literal["f32", "bf16", "int8"] = "f32",
    ) -> Tape: ...

class Tape:
    @property
    def traces(self) -> FloatArray: ...
    @property
    def info(self) -> dict: ...
    @property
    def live(self) -> bool: ...
    def backward(self, adjoint: FloatArray, keep: bool = False) -> Tuple[FloatArray, FloatArray]: ...
    def close(self) -> None: ...

class Action:
    kind: Literal["advance", "save", "restore", "free", "reverse", "join", "end"]
    start: Optional[int]
    stop: Optional[int]
    step: Optional[int]
    slot: Optional[int]

class Revolve:
    def __init__(self, steps: int, snaps: int) -> None: ...
    @property
    def steps(self) -> int: ...
    @property
    def snaps(self) -> int: ...
    def __iter__(self) -> Iterator[Action]: ...
    def __next__(self) -> Action: ...

def plan(steps: int, snaps: int) -> dict: ...
def default_dt(vp: FloatArray, spacing: float, space_order: int = 8) -> float: ...
def marmousi_like(
    shape: Sequence[int], spacing: float, seed: int = 0
) -> npt.NDArray[np.float64]: ...
def smoothed(vp: FloatArray, radius: int) -> FloatArray: ...
def ricker(f0: float, nt: int, dt: float, t0: Optional[float] = None) -> FloatArray: ...
