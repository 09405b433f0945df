"""Scale out: multi-worker training on loopback workers, and a zoo build in shards merged into one.

They run on BasicMotions (real sensor series, 40 training series): what they check does not depend on the data, and
its runs take seconds where Fashion-MNIST's take a minute.
"""

from __future__ import annotations

import json
import shutil
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.cli import main
from zoo import catalog
from zoo.errors import UserError

REPO = Path(__file__).resolve().parents[1]
DATASET = "basic_motions"
TINY = ["--model", "dense_ae", "--dataset", DATASET, "--score", "mse", "--normal-class", "1", "--epochs", "2",
        "--min-steps", "0", "--batch-size", "64", "--seed", "0", "--quiet", "--no-plots"]


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _task_index(pid: int) -> int | None:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    config = [e[len(b"TF_CONFIG="):] for e in env if e.startswith(b"TF_CONFIG=")]
    return json.loads(config[0])["task"]["index"] if config else None


@pytest.mark.slow
def test_a_killed_worker_and_a_resumed_launcher_finish_a_run_like_one_process(tmp_path):
    """Two loopback workers (`--workers 2`); one is killed after the first epoch: the launcher fails and leaves no
    worker behind; `--resume` finishes the run where the backup left it; the result trains like one process."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "training.cli", "train", "--model", "dense_ae", "--dataset", DATASET, "--score", "mse",
            "--normal-class", "1", "--epochs", "4", "--min-steps", "0", "--patience", "6", "--batch-size", "16", "--seed", "0",
            "--quiet", "--no-plots", "--workers", "2", "--out", str(out)]
    launcher = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = out / "checkpoints" / "state.json"
    deadline = time.monotonic() + 300
    while not (state.is_file() and json.loads(state.read_text() or "{}").get("epochs")):
        assert launcher.poll() is None and time.monotonic() < deadline, "the run ended before its first epoch was recorded"
        time.sleep(0.2)
    first = json.loads(state.read_text())["epochs"][0]
    workers = _children(launcher.pid)
    victim = [p for p in workers if _task_index(p) == 1]
    assert len(workers) == 2 and len(victim) == 1
    os.kill(victim[0], signal.SIGKILL)
    _, err = launcher.communicate(timeout=300)
    assert launcher.returncode != 0, err[-1000:]  # the chief fails too ...
    assert not [p for p in workers if _alive(p)]  # ... and the launcher leaves no worker behind
    assert (out / "backup").is_dir() and not json.loads(state.read_text()).get("finished")

    resumed = subprocess.run([*argv, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Traceback" not in resumed.stderr
    hist = json.loads((out / "history.json").read_text())
    assert hist["epochs_run"] == 4 and not (out / "backup").exists() and not (out / ".lock").exists()
    for name in ("model.keras", "config.json", "threshold.json", "metrics.json", "history.json"):
        assert (out / name).is_file(), name
    # BackupAndRestore continued the run: the epoch recorded before the kill was not trained again.
    assert json.loads(state.read_text())["epochs"][0]["val_loss"] == first["val_loss"]
    assert json.loads(state.read_text())["finished"]
    # The two loopback workers (the global batch split between them, a kill and a resume on the way) train like one
    # process with the same global batch, seed and data: the last validation loss within 10%.
    one = tmp_path / "one"
    cli = argv[3:]  # after `python -m training.cli`
    k = cli.index("--workers")
    one_process = cli[:k] + cli[k + 2:]
    assert one_process[-2:] == ["--out", str(out)]
    assert main([*one_process[:-1], str(one)]) == 0
    h1 = json.loads((one / "history.json").read_text())
    assert hist["val_loss"][-1] == pytest.approx(h1["val_loss"][-1], rel=0.10), (hist["val_loss"], h1["val_loss"])


@pytest.mark.parametrize("argv, message", [
    (["train", *TINY, "--workers", "0", "--out", "{t}/r"], "1..16"),
    (["train", *TINY, "--workers", "2"], "give --out"),
    (["train", *TINY, "--strategy", "spread", "--out", "{t}/r"], "invalid choice: 'spread'"),
    (["train", *TINY, "--strategy", "multiworker", "--out", "{t}/r"], "needs TF_CONFIG"),
    (["zoo", "build", "--shard", "3/2", "--saved-models", "{t}/s"], "1 <= I <= N"),
])
def test_bad_distribution_arguments(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err


def test_malformed_tf_config_is_a_clear_error(monkeypatch):
    from training import distribute

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(UserError, match="TF_CONFIG must be JSON like"):
        distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    assert distribute.is_chief() is False


@pytest.mark.slow
def test_zoo_build_in_two_shards_merges_into_one_manifest(tmp_path, capsys):
    common = ["zoo", "build", "--dataset", DATASET, "--models", "dense_ae", "--classes", "0,1", "--epochs", "1", "--min-steps",
              "0", "--qat-epochs", "1", "--runs", str(tmp_path / "runs")]
    for i in (1, 2):
        assert main([*common, "--shard", f"{i}/2", "--saved-models", str(tmp_path / f"shard{i}")]) == 0
    one = json.loads((tmp_path / "shard1" / "manifest.json").read_text())["entries"]
    two = json.loads((tmp_path / "shard2" / "manifest.json").read_text())["entries"]
    assert sorted(one) == [f"dense_ae/{DATASET}/class_0"] and sorted(two) == [f"dense_ae/{DATASET}/class_1"]
    assert main(["zoo", "merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--into", str(tmp_path / "all")]) == 0
    merged = catalog.read_manifest(tmp_path / "all")["entries"]
    assert merged == {**one, **two}
    assert main(["zoo", "verify", "--saved-models", str(tmp_path / "all")]) == 0
    # An overlap (the same shard twice, or an entry already merged) is refused before anything is copied.
    assert main(["zoo", "merge", str(tmp_path / "shard1"), str(tmp_path / "shard1"), "--into", str(tmp_path / "x")]) == 2
    assert "must not overlap" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["zoo", "merge", str(tmp_path / "shard2"), "--into", str(tmp_path / "all")]) == 2
    _merge_survives_stops_and_refuses_what_is_not_ours(tmp_path, capsys)
    # A shard of another manifest format version is refused.
    odd = tmp_path / "odd"
    shutil.copytree(tmp_path / "shard1", odd)
    manifest = json.loads((odd / "manifest.json").read_text())
    (odd / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    assert main(["zoo", "merge", str(odd), "--into", str(tmp_path / "y")]) == 2
    assert "format_version 99" in capsys.readouterr().err


def _merge_survives_stops_and_refuses_what_is_not_ours(tmp_path, capsys):
    """A disk-full stop leaves the manifest and the target untouched; a rerun after a stop between the move and the
    manifest recognizes the entry already there; a user's folder in the way, or a file as --into, is refused."""
    shards = [str(tmp_path / "shard1"), str(tmp_path / "shard2")]
    key = f"dense_ae/{DATASET}/class_0"
    full = tmp_path / "full"
    real_copytree, calls = shutil.copytree, []

    def disk_full(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_copytree(src, dst, *args, **kwargs)

    shutil.copytree = disk_full
    try:
        assert main(["zoo", "merge", *shards, "--into", str(full)]) == 2
    finally:
        shutil.copytree = real_copytree
    assert "No space left" in capsys.readouterr().err and not any(full.iterdir())
    assert main(["zoo", "merge", *shards, "--into", str(full)]) == 0  # nothing half-done is in the way
    # A stop after the move, before the manifest: the entry is there, unlisted; a dead merge's temporary too.
    stopped = tmp_path / "stopped"
    shutil.copytree(tmp_path / "shard1" / key, stopped / key)
    (stopped / ".merge-999999999-x").mkdir()
    assert main(["zoo", "merge", *shards, "--into", str(stopped)]) == 0
    assert sorted(catalog.read_manifest(stopped)["entries"]) == sorted(catalog.read_manifest(full)["entries"])
    assert not list(stopped.glob(".merge-*")) and main(["zoo", "verify", "--saved-models", str(stopped)]) == 0
    # A folder of the user's where an entry would go, and a file as --into: refused, untouched.
    theirs = tmp_path / "theirs"
    (theirs / key).mkdir(parents=True)
    (theirs / key / "mine.txt").write_text("mine")
    assert main(["zoo", "merge", *shards, "--into", str(theirs)]) == 2
    assert "is not the zoo's to replace" in capsys.readouterr().err
    assert (theirs / key / "mine.txt").read_text() == "mine" and not (theirs / "manifest.json").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["zoo", "merge", *shards, "--into", str(afile)]) == 2 and afile.read_text() == "x"
    assert "is a file" in capsys.readouterr().err
