"""`aezoo report`: the comparison table of a trained model and its TFLite / compressed versions."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # trains, compresses or converts models: the full suite runs it

from training.cli import main

# Pruning and clustering rows are the same code path as QAT's (a compressed run, then its int8 bundle); test_compress
# covers the two methods themselves, so the report test runs QAT only (the prune/cluster rows cost 40 s).
ROWS = ["keras", "float32", "float16", "dynamic", "int8", "int16x8", "int8_litert", "qat_int8"]


@pytest.mark.slow
def test_report_has_every_row_and_writes_md_and_json(tiny_mse_run, on_small_split, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["report", str(tiny_mse_run), "--out", str(out), "--iterations", "50", "--batch", "16", "--epochs", "1",
                 "--methods", "qat"])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    assert [r["key"] for r in report["rows"]] == ROWS
    for r in report["rows"]:
        assert 0.5 < r["auroc"] <= 1.0 and 0 <= r["recall_at_5pct_fpr"] <= 1, r["key"]
        assert r["bytes"] > r["gzip_bytes"] > 0 and r["images_per_second"] > 0
        assert r["label"] in md and r["label"] in printed
        if r["key"] != "keras":
            lat = r["latency_us"]
            assert lat["detector"]["n"] == lat["invoke"]["n"] == 50
            # The bare invoke is part of what Detector.score does.
            assert 0 < lat["invoke"]["median"] < lat["detector"]["median"]
    rows = {r["key"]: r for r in report["rows"]}
    assert rows["float16"]["bytes"] < rows["float32"]["bytes"] and rows["int8"]["bytes"] < rows["float16"]["bytes"]
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"] in md
    assert (tiny_mse_run.with_name("tiny-qat") / "model.keras").is_file()
    assert (out / "bundles" / "qat_int8" / "detector.json").is_file()

    assert not any(r.get("reused_run") for r in report["rows"])
    # A second report reuses the compressed runs instead of fine-tuning again.
    from training.report import _compressed_run

    assert _compressed_run(tiny_mse_run, "qat", epochs=1, seed=0, split=None) == (tiny_mse_run.with_name("tiny-qat"), True)


def test_report_rejects_bad_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path), "--methods", "zip"])
    assert exc.value.code == 2 and "invalid choice: 'zip'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path), "--iterations", "0"])
    assert exc.value.code == 2
