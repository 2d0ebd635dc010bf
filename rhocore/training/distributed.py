"""Data-parallel training over processes started by ``torchrun`` (gloo, CPU).

Every process holds the whole training set and the same model. Each optimisation step
splits its structures between the processes, each computes the metric loss and its
gradient on its share, and the summed losses and gradients are all-reduced, so every
process takes the step one process would take on the whole batch (same numbers up to
the order of floating-point sums). Only process 0 writes files and shows progress.
In a process not started by ``torchrun`` every function here is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist

from rhocore.errors import InputError

T = TypeVar("T")


def launched_world_size() -> int:
    """Number of processes ``torchrun`` started (its ``WORLD_SIZE``; 1 without torchrun)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(value)
    except ValueError:
        raise InputError(
            f"environment variable WORLD_SIZE is '{value}', not a number of processes; "
            "start parallel training with `torchrun --nproc_per_node N ...`"
        ) from None
    if size < 1:
        raise InputError(f"environment variable WORLD_SIZE is {size}; it must be at least 1")
    return size


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Join the ``torchrun`` process group for the duration (gloo backend).

    Re-entrant: inside an active group, or in a single process, it does nothing. Processes
    other than 0 log warnings only, so the terminal shows each message once.
    """
    if dist.is_initialized() or launched_world_size() == 1:
        yield
        return
    dist.init_process_group("gloo")
    logger = logging.getLogger("rhocore")
    level = logger.level
    if dist.get_rank() > 0:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
        dist.destroy_process_group()


def world_size() -> int:
    """Number of processes sharing the training (1 outside a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """Index of this process in the group (0 outside a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes files, logs and progress bars."""
    return rank() == 0


def share(items: Sequence[T]) -> list[T]:
    """This process's part of ``items``: every world_size-th one, starting at its rank."""
    return list(items[rank() :: world_size()])


def sum_values(values: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` over all processes (every process gets the same sum)."""
    if not dist.is_initialized():
        return values
    summed = values.detach().clone()
    dist.all_reduce(summed)
    return summed


def sum_gradients(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    """Sum the parameter gradients and ``loss`` over all processes; returns the summed loss.

    Gradients become the sums in place. A parameter that has no gradient in any process
    keeps none, as in one process (Adam does not step such parameters); one that has a
    gradient somewhere gets the sum, zero where a process had none. One all-reduce.
    """
    if not dist.is_initialized():
        return loss
    parameters = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad for p in parameters]
    flat = torch.cat(
        [
            loss.detach().reshape(1).to(torch.float64),
            torch.tensor([g is not None for g in grads], dtype=torch.float64),
            *[
                torch.zeros(p.numel(), dtype=torch.float64)
                if g is None
                else g.detach().reshape(-1).to(torch.float64)
                for p, g in zip(parameters, grads, strict=True)
            ],
        ]
    )
    dist.all_reduce(flat)
    offset = 1 + len(parameters)
    for index, parameter in enumerate(parameters):
        size = parameter.numel()
        if flat[1 + index] > 0:
            values = flat[offset : offset + size].view(parameter.shape)
            parameter.grad = values.to(parameter.dtype).clone()
        offset += size
    return flat[0]


def broadcast_state(model: torch.nn.Module) -> None:
    """Give every process the parameters and buffers of process 0 (in place)."""
    if not dist.is_initialized():
        return
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)
