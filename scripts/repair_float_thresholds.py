"""Give back the float threshold records of the zoo entries that lost score_mean / score_std (issue 23's bug).

    python scripts/repair_float_thresholds.py [SAVED_MODELS]

Entries built from a reused finished run went through ``AutoencoderDetector.load``, which
dropped every key starting with "score" from the threshold record, its own ``score_mean`` and
``score_std`` too (fixed in training/detector.py). For each such entry this assembles the float
detector from the entry's files, scores the normal validation inputs, recomputes the record
with ``edge.threshold.threshold_record`` and writes the two missing keys only if every recorded
key is reproduced (the threshold value to 1e-9 relative): no figure changes.
"""

from __future__ import annotations

import sys


def main(root: str | None = None) -> None:
    from edge.threshold import threshold_record
    from training import data, runs
    from training.pipeline import entry_float_detector
    from zoo import catalog, pretrained
    from zoo.files import write_json

    root = catalog.saved_models_dir(root, must_exist=True)
    for record in catalog.list_pretrained(root=root):
        old = record["threshold"]["float"]
        if "score_mean" in old:
            continue
        entry = catalog.verify_entry(record, root)
        split = data.one_class_split(record["dataset"], record["normal_class"])
        scores = entry_float_detector(record, entry).decision_function(split.x_val)
        again = threshold_record(scores, method=old["method"], percentile=old["percentile"], k=old["k"],
                                 calibrated_on=old["calibrated_on"])
        same = all(again[k] == old[k] for k in old if k != "value") and abs(again["value"] - old["value"]) <= \
            1e-9 * max(1.0, abs(old["value"]))
        if not same:
            raise SystemExit(f"{record['path']}: the recomputed record {again} does not reproduce {old}; not written")
        card = runs.read_json(entry / "card.json", "the model card")
        for doc in (record, card):
            doc["threshold"]["float"] = {**old, "score_mean": again["score_mean"], "score_std": again["score_std"]}
        write_json(entry / "card.json", card)
        record["files"] = catalog.file_records(entry, list(record["files"]))
        pretrained.record_entry(record, root)
        print(f"{record['path']}: score_mean {again['score_mean']:.6g}, score_std {again['score_std']:.6g}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
