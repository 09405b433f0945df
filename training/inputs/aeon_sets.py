"""Real sensor data that the aeon wheel ships, as TensorFlow Datasets builders prepared offline and checksummed.

- ``basic_motions``: BasicMotions (UEA): a smart watch's 3-D accelerometer and 3-D
  gyroscope (6 channels, 100 samples at 10 Hz) during four activities; 40 train / 40 test series.
- ``acsf1``: ACSF1 (UCR): the power draw of ten kinds of home appliances (1 channel,
  1460 samples); 100 train / 100 test series.
- ``kdd_tsad_135``: series 135 of the UCR anomaly archive (KDD Cup 2021,
  InternalBleeding16) in TimeEval's layout: a normal training recording of 1,200
  samples and a test recording of 7,501 with one labelled anomaly.

The files are read from the installed aeon package (found, never imported: importing
aeon loads numba) and checked against ``aeon_checksums.tsv`` beside this module
before anything is written. Afterwards ``tfds.load("basic_motions")`` works like
``tfds.load("fashion_mnist")``: examples are ``{"series": float32 [T, C], "label"}``
for the series sets and ``{"series", "is_anomaly": int64 [T]}`` for the recording.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.inputs import read_recording
from training.inputs.ts_format import read_ts
from zoo.errors import UserError
from zoo.keras import tf  # noqa: F401  (TensorFlow before tensorflow_datasets, with Keras 2)

import tensorflow_datasets as tfds  # noqa: E402

CHECKSUMS = Path(__file__).with_name("aeon_checksums.tsv")
AEON_DATA = ("datasets", "data")


@dataclass(frozen=True)
class SetInfo:
    """One sensor set: its files in aeon's data folder, its form ("set" or "recording"), channels and classes."""

    folder: str
    files: dict[str, str]
    form: str
    channels: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    description: str = ""


BUILDERS: dict[str, SetInfo] = {
    "basic_motions": SetInfo(
        "BasicMotions", {"train": "BasicMotions_TRAIN.ts", "test": "BasicMotions_TEST.ts"}, "set",
        ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), ("standing", "running", "walking", "badminton"),
        "Smart-watch accelerometer and gyroscope, 10 s at 10 Hz, during four activities (UEA BasicMotions)."),
    "acsf1": SetInfo(
        "ACSF1", {"train": "ACSF1_TRAIN.ts", "test": "ACSF1_TEST.ts"}, "set", ("power",),
        ("mobile_phone", "coffee_machine", "computer_station", "fridge_freezer", "hifi", "lamp", "laptop", "microwave",
         "printer", "television"),
        "Power draw of ten kinds of home appliances, 1460 samples each (UCR ACSF1, from ACS-F1)."),
    "kdd_tsad_135": SetInfo(
        "KDD-TSAD_135", {"train": "135_UCR_Anomaly_InternalBleeding16_TRAIN.csv",
                         "test": "135_UCR_Anomaly_InternalBleeding16_TEST.csv"}, "recording", ("value",),
        ("normal", "anomaly"),
        "Series 135 of the UCR anomaly archive (InternalBleeding16): a normal training recording and a test "
        "recording with one labelled anomaly."),
}


def aeon_data_dir() -> Path:
    """The data folder inside the installed aeon package (located without importing aeon)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the sensor sets are read from the aeon package's wheel, which is not installed: "
                        "`pip install 'aeon==1.6.*'` (scripts/setup.sh installs it)")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*AEON_DATA)


def _checksums() -> dict[str, tuple[int, str]]:
    rows = [line.split("\t") for line in CHECKSUMS.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return {name: (int(size), digest) for name, size, digest in rows}


def verified_file(folder: str, filename: str) -> Path:
    """The path of one aeon data file after checking its size and sha256 against ``aeon_checksums.tsv``."""
    rel = f"{folder}/{filename}"
    size, digest = _checksums()[rel]
    path = aeon_data_dir() / folder / filename
    if not path.is_file():
        raise UserError(f"{path} is missing from the aeon package; reinstall it (`pip install --force-reinstall 'aeon==1.6.*'`)")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != size or actual != digest:
        raise UserError(f"{path} is not the file this project was checked against (another aeon version, or altered): "
                        f"expected {size} bytes with sha256 {digest}, found {len(data)} bytes with sha256 {actual}")
    return path


class _AeonBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A sensor set from aeon's data folder; subclasses set ``name`` (a key of :data:`BUILDERS`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Prepared offline from the aeon 1.6 wheel's data files (sha256-checked)."}
    # Nothing is downloaded, so there are no URL checksums to look up.
    url_infos = None

    @property
    def set_info(self) -> SetInfo:
        return BUILDERS[self.name]

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.set_info
        features = {"series": tfds.features.Tensor(shape=(None, len(s.channels)), dtype=np.float32)}
        if s.form == "set":
            features["label"] = tfds.features.ClassLabel(names=list(s.class_names))
        else:
            features["is_anomaly"] = tfds.features.Tensor(shape=(None,), dtype=np.int64)
        return self.dataset_info_from_configs(description=s.description, features=tfds.features.FeaturesDict(features),
                                              metadata=tfds.core.MetadataDict(channels=list(s.channels), form=s.form))

    def _split_generators(self, dl_manager):
        s = self.set_info
        return {split: self._generate_examples(verified_file(s.folder, f)) for split, f in s.files.items()}

    def _generate_examples(self, path: Path):
        if self.set_info.form == "recording":
            rec = read_recording(path)
            labels = rec.labels if rec.labels is not None else np.zeros(len(rec.values), np.int64)
            yield 0, {"series": rec.values, "is_anomaly": labels}
            return
        ts = read_ts(path)
        for i, (series, label) in enumerate(zip(ts.series, ts.labels)):
            yield i, {"series": series, "label": int(label)}


class BasicMotions(_AeonBuilder):
    """UEA BasicMotions (see :data:`BUILDERS`)."""

    name = "basic_motions"


class Acsf1(_AeonBuilder):
    """UCR ACSF1 (see :data:`BUILDERS`)."""

    name = "acsf1"


class KddTsad135(_AeonBuilder):
    """UCR anomaly archive series 135 (see :data:`BUILDERS`)."""

    name = "kdd_tsad_135"


def prepare(name: str, data_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """The prepared TFDS builder of sensor set ``name``, preparing it from aeon's files (offline) the first time."""
    builder = tfds.builder(name, data_dir=os.fspath(data_dir) if data_dir is not None else None)
    if not builder.is_prepared():
        print(f"aezoo: preparing TFDS {name} from the aeon package's data into {builder.data_path} (once)", file=sys.stderr)
        tfds.disable_progress_bar()  # a few hundred series: the bars would only be noise
        try:
            builder.download_and_prepare()
        finally:
            tfds.enable_progress_bar()
    return builder
