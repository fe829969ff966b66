"""Figures: every plot writes a PNG from real inputs; bad inputs fail with a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sfc.errors import UserError
from sfc.models import build_model, model_checkpoint
from sfc.report import figures
from sfc.report.tables import TABLE_COLUMNS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000


def _save_model(tmp_path, exp_id: str):
    path = tmp_path / f"{exp_id}.pt"
    torch.save(model_checkpoint(build_model(exp_id), exp_id), path)
    return path


def _table_csv(tmp_path):
    rows = []
    for enc, base in (("band_split", 5.0), ("sfc_ca", 6.0)):
        for k in (16, 32):
            exp = f"mss-{enc}-tiny-k{k}"
            rows.append(
                ("num_bands", "", exp, "csdr", "cSDR", "avg", base + k / 16, 0.1, 2, np.nan, np.nan)
            )
            rows.append(
                (
                    "num_bands",
                    "",
                    exp,
                    "params",
                    "params (M)",
                    "total",
                    k / 10,
                    np.nan,
                    2,
                    np.nan,
                    np.nan,
                )
            )
    path = tmp_path / "num_bands.csv"
    rows = [(*row, 3) for row in rows]  # n_tracks
    pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).to_csv(path, index=False)
    return path


def test_summary_plots(tmp_path):
    table = _table_csv(tmp_path)
    figures.plot_num_bands([table], tmp_path / "k.png")
    figures.plot_params([table], tmp_path / "p.png")
    assert _is_png(tmp_path / "k.png") and _is_png(tmp_path / "p.png")
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_summary_plot_needs_an_sdr_column(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame(
        [("cost", "", "mss-sfc_ca-tiny-k16", "params", "params (M)", "total", 1, 0, 1, 0, 0, 3)],
        columns=list(TABLE_COLUMNS),
    ).to_csv(path, index=False)
    with pytest.raises(UserError, match="SDR"):
        figures.plot_num_bands([path], tmp_path / "x.png")


def test_position_bias_plot(tmp_path):
    model = _save_model(tmp_path, "mss-sfc_ca-tiny-k16")
    figures.plot_position_bias(model, tmp_path / "bias.png")
    assert _is_png(tmp_path / "bias.png")


def test_position_bias_refuses_other_encoders(tmp_path):
    model = _save_model(tmp_path, "mss-band_split-tiny-k16")
    with pytest.raises(UserError, match="SFC-CA"):
        figures.plot_position_bias(model, tmp_path / "bias.png")
    assert not (tmp_path / "bias.png").exists()


def test_loudest_window():
    sr = 100
    mix = np.zeros((2, 10 * sr), dtype=np.float32)
    mix[:, 6 * sr : 8 * sr] = 1.0  # loud between 6 and 8 s
    assert figures.loudest_window(mix, sr, 2.0) == 6 * sr
    assert figures.loudest_window(mix[:, :150], sr, 4.0) == 0  # shorter than the window


def test_attention_plot(tmp_path):
    from sfc.data.synth import SynthConfig, generate

    root = tmp_path / "data"
    generate("mss", root, SynthConfig(seed=1, num_train=1, num_valid=1, num_test=1, duration=2.0))
    model = _save_model(tmp_path, "mss-sfc_ca-tiny-k16")
    audio = figures.plot_attention(model, root, tmp_path / "attn.png", seconds=1.0)
    assert _is_png(tmp_path / "attn.png")
    assert {p.stem for p in audio} >= {"mixture", "vocals", "bass", "drums", "other"}
    with pytest.raises(UserError, match="nope"):
        figures.plot_attention(model, root, tmp_path / "x.png", track="nope")
