"""The series part of ``aezoo demo``: a sensor detector streaming a real test recording on the device runtime.

The detector is the pretrained ``conv1d_ae`` entry of the KDD-TSAD 135 recording when
saved_models/ has it (sha256-checked), else one trained here with the zoo's settings.
The raw test recording then streams through ``edge.StreamDetector`` one sample at a
time, as a sensor delivers it; the alarms (runs of anomalous verdicts) are printed
against the labelled anomaly and drawn with the signal, the scores and the threshold.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

DATASET = "kdd_tsad_135"
MODEL = "conv1d_ae"
MAX_SHOWN = 10  # alarms printed; an alarm on a labelled anomaly is always printed


def _detector(out: Path, settings: Any) -> tuple[Any, str]:
    """(StreamDetector, where it came from): the pretrained entry, or one trained into ``out``."""
    from edge import StreamDetector
    from training import pipeline
    from zoo import catalog

    key = catalog.entry_key(MODEL, DATASET, 0)
    if key in catalog.read_manifest()["entries"]:
        return StreamDetector.from_zoo(MODEL, DATASET, 0), f"the pretrained entry {key} (sha256 verified)"
    print(f"      no pretrained {key} in saved_models/: training one ({MODEL}, the zoo's settings)")
    record = pipeline.run_entry(MODEL, DATASET, 0, out / "entry", settings=settings, run_dir=out / "run", verbose=0)
    q = record["quant"]
    return StreamDetector.load(out / "entry" / "detector"), f"trained here: {out / 'entry'} ({q} AUROC " \
                                                             f"{record['metrics'][q]['auroc']:.3f})"


def alarms(verdicts: list) -> list[tuple[int, int, int, float]]:
    """Runs of consecutive anomalous verdicts as (sample it was raised at, first and last sample its windows cover,
    peak score)."""
    out: list[list] = []
    previous = None
    for v in verdicts:
        if v.anomaly:
            if previous is not None and previous.anomaly:
                out[-1][2], out[-1][3] = v.end, max(out[-1][3], v.score)
            else:
                out.append([v.end, v.start, v.end, v.score])
        previous = v
    return [(int(r), int(a), int(b), float(s)) for r, a, b, s in out]


def series_demo(out: Path, settings: Any, step: str = "") -> dict:
    """Stream the KDD-TSAD 135 test recording through a series detector; print the alarms; draw the PNG."""
    from training import data, plots
    from training.inputs.series import load_series
    from training.metrics import events

    print(f"{step}sensor series: {DATASET} (a real recording of the KDD Cup 2021 / UCR anomaly archive, bundled with aeon)")
    data.prepared_builder(DATASET)
    rec = load_series(data.Source(DATASET))
    signal, labels = rec.test[0], rec.test_labels
    labelled = events(labels)
    print(f"      normal training recording: {len(rec.train[0])} samples; test recording: {len(signal)} samples, "
          f"labelled anomaly at samples {', '.join(f'{a}..{b}' for a, b in labelled)}")
    stream, origin = _detector(out, settings)
    print(f"      edge.StreamDetector: {origin}; windows of {stream.window} samples every {stream.hop}, the first "
          f"verdict after {stream.first_verdict_after} samples, threshold {stream.threshold_:.5g}")
    t0 = time.perf_counter()
    verdicts = [v for sample in signal for v in stream.push(sample)]  # one sample at a time, as a sensor delivers them
    seconds = time.perf_counter() - t0
    found = alarms(verdicts)
    print(f"      streamed {len(signal)} samples one by one: {len(verdicts)} verdicts in {seconds * 1e3:.0f} ms "
          f"({len(signal) / seconds:,.0f} samples/s), {len(found)} alarm(s):")
    hits, hidden = set(), 0
    for i, (raised, a, b, peak) in enumerate(found):
        touched = [e for e in labelled if a <= e[1] and e[0] <= b]
        hits.update(touched)
        what = (f"its windows cover the labelled anomaly {touched[0][0]}..{touched[0][1]} (raised {raised - touched[0][0]} "
                "samples after it began)" if touched else "false alarm")
        if i < MAX_SHOWN or touched:
            print(f"        raised at sample {raised} (windows over {a}..{b}), peak score {peak:.5g}: {what}")
        else:
            hidden += 1
    if hidden:
        print(f"        ({hidden} more false alarms not shown; all are in demo.json)")
    for e in labelled:
        print(f"      labelled anomaly {e[0]}..{e[1]}: {'found' if e in hits else 'MISSED'}")
    # What the device knows at each sample: the score of the latest verdict (none before the first window).
    held = np.full(len(signal), np.nan)
    for v in verdicts:
        held[v.end :] = v.score
    png = plots.signal_scores(out / "stream.png", stream.input.standardize(signal), np.nan_to_num(held, nan=0.0),
                              labels, stream.threshold_, score_label="score of the latest window (stream)",
                              title=f"{DATASET}: StreamDetector on the test recording ({origin.split(' (')[0]})")
    print(f"      plot: {png}")
    return {"dataset": DATASET, "detector": origin, "samples": len(signal), "window": stream.window, "hop": stream.hop,
            "verdicts": len(verdicts), "alarms": found,
            "events": labelled, "events_found": len(hits),
            "false_alarms": sum(1 for _, a, b, _ in found if not any(a <= e[1] and e[0] <= b for e in labelled)),
            "samples_per_second": len(signal) / seconds, "plot": str(png)}
