"""@task functions the server tests discover and launch (copied into each test's folder)."""

import os
import time
from typing import Literal

from taskcache import task


@task
def scale(n: int, factor: float = 2.0, mode: Literal["up", "down"] = "up", loud: bool = False) -> float:
    """Multiply n by factor.

    Args:
        n: how many
        factor: by how much
    """
    return n * factor if mode == "up" else n / factor

@task
def where(tag: str = "") -> int:
    return os.getpid()

@task
def broken(x: int) -> int:
    raise ValueError(f"bad input {x}")

@task
def slow(seconds: float = 30.0) -> float:
    time.sleep(seconds)
    return seconds
