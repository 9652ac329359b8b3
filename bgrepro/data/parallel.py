"""One way to run independent tasks over processes, with a progress bar."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence

from tqdm.auto import tqdm


def _init_worker(initializer: Callable | None, initargs: tuple) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    if initializer is not None:
        initializer(*initargs)


def run_tasks(fn: Callable, tasks: Sequence, workers: int, desc: str, progress: bool = True,
              initializer: Callable | None = None, initargs: tuple = ()) -> list:
    """`[fn(t) for t in tasks]` over `workers` processes (in this process for one), in task order.

    Workers are spawned, not forked: forking after OpenCV has started its thread pool can
    deadlock the child. `initializer(*initargs)` runs once in each worker (not for one worker).
    """
    results = []
    with tqdm(total=len(tasks), desc=desc, unit="img", disable=not progress) as bar:  # closed on errors too
        if workers <= 1:
            for task in tasks:
                results.append(fn(task))
                bar.update()
        else:
            with mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                              initargs=(initializer, initargs)) as pool:
                for result in pool.imap(fn, tasks, chunksize=8):
                    results.append(result)
                    bar.update()
    return results
