"""Scoring jobs, in this process or in a bounded pool of worker processes.

Results are keyed by the caller, so the outcome never depends on the number of workers or
on the order in which jobs finish.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Hashable
from typing import Any

import numpy as np

from fsq_audio.eval.metrics import score


def _score_job(ref: np.ndarray, deg: np.ndarray) -> dict:
    return score(ref, deg)


class MetricPool:
    """Runs `metrics.score(ref, deg)` jobs.

    Args:
        workers: 1 scores at submit time in this process; more uses that many spawned
            processes, with at most 2 * workers jobs (and their audio) in flight.
    """

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._done: dict[Hashable, dict] = {}
        self._pending: dict[cf.Future, Hashable] = {}
        self._executor: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> "MetricPool":
        if self.workers > 1:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
            self._executor = cf.ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def submit(self, key: Hashable, ref: np.ndarray, deg: np.ndarray) -> None:
        """Queue (or run) the scoring of `deg` (T',) against `ref` (T,) under `key`."""
        if self._executor is None:
            self._done[key] = _score_job(ref, deg)
            return
        while len(self._pending) >= 2 * self.workers:
            self._collect(cf.FIRST_COMPLETED)
        self._pending[self._executor.submit(_score_job, ref, deg)] = key

    def _collect(self, return_when: str) -> None:
        done, _ = cf.wait(list(self._pending), return_when=return_when)
        for fut in done:
            key = self._pending.pop(fut)
            try:
                self._done[key] = fut.result()
            except Exception as exc:  # a crashed worker: record it like a failed metric
                self._done[key] = {"error": f"scoring failed: {type(exc).__name__}: {exc}"[:500]}

    def results(self) -> dict[Hashable, dict]:
        """Wait for every job; {key: score dict}."""
        if self._pending:
            self._collect(cf.ALL_COMPLETED)
        return dict(self._done)
