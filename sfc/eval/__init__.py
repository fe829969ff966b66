"""Evaluation: chunked whole-track separation, metrics, score tables and the ``separate``/``evaluate`` CLIs.

Modules:

* ``separate``      — ``separate_track(model, mix)``: 12-s/6-s chunked separation (PAPER: spec §9).
* ``metrics``       — uSDR/SNR, cSDR, SI-SDR, SpecSNR and ``score_track`` (PAPER: spec §9, §14).
* ``bsseval``       — framewise BSSEval v4 SDR: a fast exact version and the museval reference.
* ``table``         — per-track result files, tidy table, aggregates, paired t-test.
* ``separate_cli``  — ``sfc separate``; ``cli`` — ``sfc evaluate``.
"""

from __future__ import annotations
