"""Data: download and verify datasets, generate the demo datasets, segment, cache and load.

Modules (imported on demand, so ``import sfc.data`` stays cheap):

* ``download``  — resumable, verified download and atomic extraction of MUSDB18-HQ and DnR v2.
* ``synth``     — deterministic demo datasets in the MUSDB18-HQ and DnR layouts (no download).
* ``tracks``    — ``TrackRef`` / ``Track``, ``list_tracks`` and ``load_track`` with the split rules.
* ``segment``   — source-activity segmentation of training stems (PAPER: spec §1.3).
* ``cache``     — memory-mapped training-segment cache built from the train split only.
* ``dataset``   — ``DynamicMixDataset`` (PAPER: spec §8) and ``TrackDataset`` (whole tracks).
* ``cli``       — ``sfc data {download,generate,segment,cache,inspect}``.
"""

from __future__ import annotations
