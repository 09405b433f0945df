"""Data-parallel training with ``tf.distribute``, and a local launcher of loopback workers.

``--strategy mirrored`` replicates the model over this machine's devices
(``MirroredStrategy``); ``--strategy multiworker`` joins the cluster that the standard
``TF_CONFIG`` environment variable describes (``MultiWorkerMirroredStrategy``). The model is
built and compiled inside the strategy's scope, the tf.data pipeline is sharded by data
(``AutoShardPolicy.DATA``: every worker reads the same in-memory arrays and keeps its share
of each global batch), the batch size given is the global batch, and ``BackupAndRestore``
lets a restarted worker continue. Only the chief writes the run folder; the other workers
keep their checkpoints in temporary folders, as TensorFlow's guide prescribes.

``aezoo train ... --workers N`` starts N such workers on 127.0.0.1 with free ports and a
generated ``TF_CONFIG``, waits for them and stops them all if one fails or on Ctrl-C. On a
real cluster, set ``TF_CONFIG`` on each host yourself and run the same
``aezoo train ... --strategy multiworker`` everywhere (README, "Scale out").
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any, Sequence

from zoo.errors import UserError

STRATEGIES = ("none", "mirrored", "multiworker")
MAX_WORKERS = 16


def cluster() -> dict | None:
    """The parsed ``TF_CONFIG`` (None when unset); a malformed one is a UserError."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        ok = isinstance(workers, list) and workers and task["type"] in ("worker", "chief") and isinstance(task["index"], int)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise UserError('TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                        f'"index": 0}}}}. Received: {text[:200]!r}')
    return config


def is_chief() -> bool:
    """True for the process that writes the run folder: no cluster, the "chief" task, or worker 0 without one."""
    config = cluster()
    if config is None:
        return True
    task = config["task"]
    return task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0 and "chief" not in config["cluster"])


def make_strategy(name: str) -> Any:
    """The ``tf.distribute`` strategy called ``name`` (None for "none")."""
    if name not in STRATEGIES:
        raise UserError(f"strategy must be one of {', '.join(STRATEGIES)}. Received: --strategy {name}")
    if name == "none":
        return None
    from zoo.keras import tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if cluster() is None:
        raise UserError("--strategy multiworker needs TF_CONFIG describing the cluster (or use --workers N to start "
                        "loopback workers here)")
    return tf.distribute.MultiWorkerMirroredStrategy()


def sharded(ds: Any) -> Any:
    """``ds`` with data-based auto-sharding: each worker keeps its part of every global batch."""
    from zoo.keras import tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(argv: Sequence[str], workers: int) -> int:
    """Run ``aezoo`` ``argv`` (with ``--strategy multiworker``) as ``workers`` loopback processes; return the chief's code.

    Worker 0 is the chief and prints as usual; the others are quiet. Every process is
    stopped when one fails or when the launcher is interrupted.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers must be an integer in 1..{MAX_WORKERS}. Received: --workers {workers}")
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(workers)]
    procs = []
    try:
        for i in range(workers):
            env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})}
            quiet = {} if i == 0 else {"stdout": subprocess.DEVNULL}
            procs.append(subprocess.Popen([sys.executable, "-m", "training.cli", *argv, "--strategy", "multiworker"],
                                          env=env, **quiet))
        return _wait(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _wait(procs: list[subprocess.Popen]) -> int:
    """Wait for every worker; when one fails, stop the others and return its code."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [c for c in codes if c not in (None, 0)]
        if failed:
            return failed[0]
        if all(c == 0 for c in codes):
            return 0
        time.sleep(0.2)
