"""Run a reproduction's work units on Ray: one Ray task per training, campaign, sharpness or sparsity unit.

Only the driver writes: a task (:mod:`flatenn.repro.tasks`) gets everything it needs (config, model
weights, data, options, run id) and returns rows; the driver merges them into the results folder, so
rows equal the local executor's, an interrupted run resumes like a local one, and a worker that dies
records nothing (Ray retries the task once, then the unit is reported as failed and the others are kept).

Models travel through Ray's object store, not the zoo: a model is a state dict of a few MB at most,
``ray.put`` once and shared by every task that measures it, so workers need no shared file system and
never write the cache; a trained model comes back the same way and the driver stores it in the zoo.
Each task declares its resources: as many CPUs as the torch threads it runs with (the scale's
``torch_threads``, at least ``cpus_per_task``), and where the cluster has GPUs a fraction
(``gpus_per_task``, default 0.25) so several small evaluations share one GPU.

Ray is an optional dependency (``pip install flatenn[ray]``); this module imports it only when used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from ..core.evaluate import batches_fingerprint
from .plan import Unit
from .tasks import Task, TaskResult, execute_with


class UnitsFailedError(RuntimeError):
    """Some units failed on the cluster; their rows were not recorded, every other unit's were."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'flatenn[ray]' (or pip install ray)") from None
    return ray


class RayExecutor:
    """Runs units as Ray tasks (see the module docstring). ``address``: ``None`` starts a local Ray
    instance (``ray.init()``), ``"auto"`` joins the cluster this machine belongs to, else ``host:port``."""

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.25,
        max_retries: int = 1,
        function=execute_with,
    ) -> None:
        self.address, self.num_cpus = address, num_cpus
        self.cpus_per_task, self.gpus_per_task, self.max_retries = cpus_per_task, gpus_per_task, max_retries
        self.function = function  # what a worker runs on a task (default: flatenn.repro.tasks.execute_with)
        self._remote = None
        self._refs: dict = {}

    def start(self):
        """Connect to (or start) Ray and declare the task; a clear ValueError when the cluster is unreachable."""
        return self._start()

    def _start(self):
        ray = _ray()
        if not ray.is_initialized():
            _probe(self.address)
            try:
                kw = {"num_cpus": self.num_cpus} if self.address is None and self.num_cpus else {}
                # the driver's flatenn travels with the tasks (also to nodes that have no or another install)
                import flatenn

                pkg = os.path.dirname(flatenn.__file__)  # uploaded to every node: workers run the driver's code
                ray.init(
                    address=self.address,
                    log_to_driver=False,
                    include_dashboard=False,
                    runtime_env={"py_modules": [pkg]},
                    **kw,
                )
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = self.address or "a local Ray instance"
                raise ValueError(
                    f"cannot reach the Ray cluster at {where}: {str(e).splitlines()[0]}; start it with "
                    "'ray start --head' (or leave --ray-address out for a local instance)"
                ) from None
        gpus = ray.cluster_resources().get("GPU", 0)
        if self._remote is None:
            opts = {"num_cpus": self.cpus_per_task, "max_retries": self.max_retries}
            if gpus:
                opts["num_gpus"] = self.gpus_per_task
            self._remote = ray.remote(**opts)(self.function)
        return ray

    def run(self, units: Iterable[Unit], experiment) -> None:
        """Train what must be trained (parents first), then measure; the driver records every result."""
        units = list(units)
        ray = self._start()
        failed: list[str] = []
        self._train(ray, [u for u in units if u.kind == "models"], experiment, failed)
        for u in units:  # loading and bookkeeping of every model on the driver (training is done)
            if u.kind == "models" and experiment.model_ready(u):
                experiment.run_unit(u)
        pending = {}
        for u in units:
            if u.kind == "models" or not experiment.model_ready(u):
                continue
            task = experiment.task(u)
            if task is None:  # already recorded
                experiment.run_unit(u)
                continue
            pending[self._submit(ray, task)] = u
            # record what finished while this task was built (a data-fitted protection, e.g. FT-ClipAct's search,
            # is built on the driver): rows land as they come, so an interrupted run keeps them
            self._collect(ray, pending, experiment, failed, wait=False)
        self._collect(ray, pending, experiment, failed)
        if failed:
            raise UnitsFailedError(
                f"{len(failed)} unit(s) failed and were not recorded (the rest are): "
                + "; ".join(failed[:5])
                + ("; …" if len(failed) > 5 else "")
                + ". Run the same command again to retry them."
            )

    def _put(self, ray, key, value):
        """One object-store copy per model (by fingerprint) and per data set, however many tasks use it."""
        if not key[1] or key not in self._refs:  # a training task's parent weights have no fingerprint: not shared
            ref = ray.put(value)
            if not key[1]:
                return ref
            self._refs[key] = ref
        return self._refs[key]

    def _submit(self, ray, task: Task):
        """Model weights and data go through the object store (top-level references, resolved by Ray)."""
        import dataclasses

        state = self._put(ray, ("model", task.fingerprint), task.state) if task.state is not None else None
        inputs = None
        if task.inputs is not None:  # the evaluation / sharpness set: put once, shared by every task
            key = ("data", batches_fingerprint([task.inputs]))  # by content: equal data, one copy
            inputs = self._put(ray, key, task.inputs)
        # a task declares the CPUs its torch threads use: oversubscribed cores make torch's OpenMP threads spin
        cpus = max(self.cpus_per_task, task.threads or 1)
        return self._remote.options(num_cpus=cpus).remote(
            dataclasses.replace(task, state=None, inputs=None), state, inputs
        )

    def _train(self, ray, model_units: list[Unit], experiment, failed: list[str]) -> None:
        waves = experiment.training_waves(model_units)  # configs to train, parents in earlier waves
        for wave in waves:
            wave = [c for c in wave if c.parent is None or not experiment.failed_training(c.parent)]
            pending = {self._submit(ray, experiment.train_task(cfg)): cfg for cfg in wave}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                cfg = pending.pop(done[0])
                try:
                    result: TaskResult = ray.get(done[0])
                except Exception as e:  # noqa: BLE001 - a failed unit is reported, never half-recorded
                    failed.append(f"train {cfg.key()}: {_first_line(e)}")
                    experiment.training_failed(cfg)
                    continue
                experiment.adopt_trained(cfg, result)

    def _collect(self, ray, pending: dict, experiment, failed: list[str], wait: bool = True) -> None:
        """Record finished tasks: every pending one (``wait``), or only those already done."""
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=None if wait else 0)
            if not done:
                return
            unit = pending.pop(done[0])
            try:
                result: TaskResult = ray.get(done[0])
            except Exception as e:  # noqa: BLE001
                failed.append(f"{unit.kind} {unit.label(experiment.scale)}: {_first_line(e)}")
                print(
                    f"flatenn: unit {unit.kind} {unit.label(experiment.scale)} failed; its rows are not recorded",
                    file=sys.stderr,
                )
                continue
            experiment.record(unit, result)


def _probe(address: str | None, timeout: float = 5.0) -> None:
    """A ``host:port`` address must accept a connection (Ray itself would retry for minutes)."""
    import socket

    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise ValueError(
            f"cannot reach the Ray cluster at {address}: {e.strerror or e}; start it with "
            "'ray start --head' and pass the address it prints (or leave --ray-address out)"
        ) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return next((t for t in reversed(text) if t.strip()), type(e).__name__)[:300]
