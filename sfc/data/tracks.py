"""Track listing and loading for the MUSDB18-HQ layout (task ``mss``) and the DnR layout (``cass``).

PAPER: spec §1.1 (MUSDB18-HQ 86 train / 14 valid / 50 test) and §1.2 (DnR v2 tr / cv / tt).

Layouts::

    mss:  <root>/{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav   stereo, 44.1 kHz
    cass: <root>/{tr,cv,tt}/<id>/{mix,speech,music,sfx}.wav                   mono,   44.1 kHz

For ``mss`` the valid split is the set of tracks of ``train/`` named in the valid list; the train
split is the rest of ``train/``. The valid list is ``<root>/valid_tracks.txt`` when that file
exists (the demo generator writes one), else the standard 14-track list of spec §1.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfc.data.audio import SAMPLE_RATE, read_wav
from sfc.errors import UserError
from sfc.experiments import TASKS

SPLITS = ("train", "valid", "test")

# PAPER: spec §1.1, the standard MUSDB18 validation tracks moved out of train (code data.sh).
MUSDB_VALID_TRACKS: tuple[str, ...] = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
VALID_LIST_FILE = "valid_tracks.txt"

# task -> file stem of the mixture, and split -> folder
MIXTURE_FILE = {"mss": "mixture", "cass": "mix"}
SPLIT_DIRS = {
    "mss": {"train": "train", "valid": "train", "test": "test"},
    "cass": {"train": "tr", "valid": "cv", "test": "tt"},
}


@dataclass(frozen=True)
class TrackRef:
    """Where one track lives. ``split`` is one of ``train``, ``valid``, ``test``."""

    task: str
    split: str
    name: str
    path: Path


@dataclass
class Track:
    """One loaded track.

    Shapes:
        mixture: (C, L) float32
        sources: (N, C, L) float32, in ``sfc.experiments.TASKS[task].sources`` order
    """

    ref: TrackRef
    mixture: np.ndarray
    sources: np.ndarray
    sample_rate: int


def check_task(task: str) -> None:
    """Raise UserError unless ``task`` is a known task."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}: expected one of {sorted(TASKS)}")


def stem_files(task: str) -> list[str]:
    """File stems of one track folder: the mixture first, then the sources in task order."""
    check_task(task)
    return [MIXTURE_FILE[task], *TASKS[task].sources]


def musdb_valid_names(root: Path) -> list[str]:
    """The valid list of a MUSDB-layout root: ``valid_tracks.txt`` if present, else spec §1.1."""
    listed = root / VALID_LIST_FILE
    if listed.is_file():
        return [ln.strip() for ln in listed.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return list(MUSDB_VALID_TRACKS)


def _track_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"missing split folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_tracks(root: str | Path, task: str, split: str) -> list[TrackRef]:
    """List the tracks of one split, sorted by name.

    Args:
        root: dataset root (MUSDB layout for ``mss``, DnR layout for ``cass``).
        task: ``mss`` or ``cass``.
        split: ``train``, ``valid`` or ``test`` (DnR: ``tr``, ``cv``, ``tt``).

    Raises:
        UserError: unknown task or split, missing folder, or (mss) a valid-list track missing from train/.
    """
    check_task(task)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}: expected one of {list(SPLITS)}")
    root = Path(root)
    dirs = _track_dirs(root / SPLIT_DIRS[task][split])
    if task == "mss" and split != "test":
        valid = musdb_valid_names(root)
        missing = sorted(set(valid) - {d.name for d in dirs})
        if missing:
            raise UserError(f"{root / 'train'}: valid-list tracks missing: {missing}")
        keep = set(valid)
        dirs = [d for d in dirs if (d.name in keep) == (split == "valid")]
    return [TrackRef(task, split, d.name, d) for d in dirs]


def load_track(ref: TrackRef) -> Track:
    """Load the mixture and sources of one track, checking rate, channels and lengths.

    Raises:
        UserError: naming the file, for a missing stem, wrong sample rate or channel count, an empty
            or corrupt wav, or stems of different lengths.
    """
    num_channels = TASKS[ref.task].num_channels
    names = stem_files(ref.task)
    audio = [read_wav(ref.path / f"{n}.wav", SAMPLE_RATE, num_channels) for n in names]  # [(C, L)]
    length = audio[0].shape[-1]
    for name, a in zip(names, audio):
        if a.shape[-1] != length:
            raise UserError(
                f"{ref.path / (name + '.wav')}: {a.shape[-1]} samples, but the mixture has {length}"
            )
    sources = np.stack(audio[1:])  # (N, C, L)
    return Track(ref=ref, mixture=audio[0], sources=sources, sample_rate=SAMPLE_RATE)
