"""Several processes, one result: torch.distributed under torchrun (NCCL on GPUs, gloo on CPUs).

`torchrun --nproc_per_node N -m bgrepro challenge | eval | saliency | localize | build | report ...` runs
N copies of the command. Every heavy stage splits its items over the ranks in contiguous blocks
(`shard`), computes its own block, and gathers the blocks in rank order (`gather`), so that every rank
ends with the whole result, the same numbers as one process. Outputs are written by rank 0 alone
(`is_main`): it takes the output's lock and checks (`main_first`), and the other ranks follow its
answer, stopping quietly (`Stopped`) when it refused. Without torchrun (no `WORLD_SIZE`, or 1) every
function here is the identity of one process and no process group is made.

Files are read and written by path, so ranks on several machines need the data and the output on a
shared file system, as torchrun's own multi-node training does.

torch is imported only where a process group is used: the data builder's worker processes import this module, and
torch cost each of them about 500 MB.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def _torch():
    import torch

    return torch


def _group_made() -> bool:
    """Whether a process group exists (none can without torch loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()


class Stopped(Exception):
    """Raised on the other ranks when rank 0 stopped with an error (which rank 0 alone reports)."""


#: The exit code of a rank that stopped because another rank ended (with its own error, which it said): the
#: launcher (`bgrepro --processes`) tells it apart from a rank that failed.
PEER_GONE = 3


def peer_gone(err: BaseException) -> bool:
    """Whether an error is the process group's notice that another rank has ended (gloo's closed connection,
    NCCL's aborted communicator), not a failure of this rank's own."""
    backend_error = getattr(_torch().distributed, "DistBackendError", ())
    text = str(err)
    return isinstance(err, backend_error) or any(s in text for s in (
        "Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted"))


def world_size() -> int:
    """How many processes run this command (torchrun's WORLD_SIZE; 1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def rank() -> int:
    """This process's rank (0 without torchrun); makes the process group on first use."""
    if world_size() == 1:
        return 0
    _init()
    return _torch().distributed.get_rank()


def _init() -> None:
    torch = _torch()
    if torch.distributed.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_device())
        torch.distributed.init_process_group("nccl")
    else:
        torch.distributed.init_process_group("gloo")


def rank_label() -> str:
    """This process's rank for messages, without making a process group (which may be what failed)."""
    if _group_made():
        return str(_torch().distributed.get_rank())
    return os.environ.get("RANK", "?")


def local_device() -> torch.device:
    """This rank's device: its own GPU (LOCAL_RANK) when there are GPUs, else the CPU."""
    torch = _torch()
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def is_main() -> bool:
    """Whether this process writes the outputs (rank 0, or the only process)."""
    return rank() == 0


def active() -> bool:
    """Whether this command runs over several processes."""
    return world_size() > 1


def shard(n: int) -> slice:
    """This rank's contiguous block of `n` items (blocks differ in size by at most one)."""
    world = world_size()
    r = rank()
    return slice(n * r // world, n * (r + 1) // world)


def shard_batches(n: int, batch_size: int) -> slice:
    """This rank's block of `n` items in whole batches of `batch_size`: the batches one process would make,
    shared out, so that batched results (and sums taken batch by batch) equal one process's."""
    batches = -(-n // batch_size)
    block = shard(batches)
    return slice(min(n, block.start * batch_size), min(n, block.stop * batch_size))


def barrier() -> None:
    if active():
        rank()
        _torch().distributed.barrier()


def finish(ok: bool) -> None:
    """End the process group (if one was made): after the others when this rank succeeded, so that no rank
    leaves while one still needs it, and without waiting after an error."""
    if _group_made():
        if ok:
            _torch().distributed.barrier()
        _torch().distributed.destroy_process_group()


def _all(obj):
    out = [None] * world_size()
    _torch().distributed.all_gather_object(out, obj)
    return out


def gather(part):
    """Every rank's block of a result, joined in rank order, on every rank: tensors and arrays are
    concatenated along their first axis (on the CPU), lists joined, numbers summed."""
    if not active():
        return part
    rank()
    torch = _torch()
    if isinstance(part, torch.Tensor):
        return torch.cat([p for p in _all(part.cpu())])
    if isinstance(part, np.ndarray):
        return np.concatenate(_all(part))
    if isinstance(part, (int, float)):
        return sum(_all(part))
    if isinstance(part, list):
        return [x for block in _all(part) for x in block]
    raise TypeError(f"cannot gather {type(part).__name__}")


def broadcast(obj):
    """Rank 0's `obj` on every rank."""
    if not active():
        return obj
    rank()
    box = [obj]
    _torch().distributed.broadcast_object_list(box, src=0)
    return box[0]


@contextmanager
def main_first(enter: Callable[[], object]) -> Iterator[object]:
    """Enter the context `enter()` (an output's lock and checks) on rank 0 alone; the other ranks learn
    whether it succeeded, and raise `Stopped` when it did not. Yields the context's value on every rank
    (rank 0's, broadcast: a staging folder's path, say; writes stay rank 0's, `is_main`)."""
    if not active():
        with enter() as value:
            yield value
        return
    if not is_main():
        state, value = broadcast(None)
        if state != "ok":
            raise Stopped()
        yield value
        barrier()  # rank 0 has put the output in place
        return
    stack = ExitStack()
    try:
        value = stack.enter_context(enter())
    except BaseException:
        broadcast(("stopped", None))
        raise
    broadcast(("ok", value))
    with stack:
        yield value
    barrier()


def on_main(fn: Callable[[], object]) -> object:
    """`fn()` (a check) on rank 0 alone; the other ranks stop quietly when it raised. Its value, rank 0's, on
    every rank."""
    with main_first(lambda: nullcontext(fn())) as value:
        return value


def map_blocks(fn: Callable[[Sequence], list], items: Sequence) -> list:
    """`fn(items)` computed block by block over the ranks and joined in order: `fn` maps a block of items
    to a list of the same length."""
    return gather(list(fn(items[shard(len(items))])))
