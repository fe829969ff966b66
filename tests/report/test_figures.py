"""Figures: every plot writes a PNG from real inputs; bad inputs fail with a clear error."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from sfc.bands import musical_bands
from sfc.data.tracks import list_tracks, load_track
from sfc.errors import UserError
from sfc.experiments import TASKS
from sfc.models import build_model, load_model, model_checkpoint
from sfc.models.sfc_ca import encoder_attention, initial_position_bias
from sfc.report import figures
from sfc.report.tables import TABLE_COLUMNS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000


def _colours(path, min_share: float = 1e-3) -> int:
    """Distinct saturated colours (colour-map cells, lines, markers) in the PNG, each covering at least
    ``min_share`` of the coloured area; text, axes and background are grey. A blank heat map gives 1,
    an empty axes 0."""
    rgb = (mpimg.imread(path)[..., :3].reshape(-1, 3) * 255).round().astype(np.uint8)
    coloured = rgb[rgb.max(1).astype(int) - rgb.min(1) > 40]
    if not len(coloured):
        return 0
    _, counts = np.unique(coloured, axis=0, return_counts=True)
    return int((counts >= min_share * len(coloured)).sum())


def _save_model(tmp_path, exp_id: str):
    path = tmp_path / f"{exp_id}.pt"
    torch.save(model_checkpoint(build_model(exp_id), exp_id), path)
    return path


def _table_frame(rows: list[tuple]) -> pd.DataFrame:
    """A table CSV's frame from rows up to ``n_tracks``; no significance test (baseline "", p NaN)."""
    return pd.DataFrame([(*r, "", np.nan, None) for r in rows], columns=list(TABLE_COLUMNS))


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
    _table_frame([(*row, 3) for row in rows]).to_csv(path, index=False)  # n_tracks 3
    return path


def test_summary_plots(tmp_path):
    table = _table_csv(tmp_path)
    k = figures.plot_num_bands([table], tmp_path / "k.png")
    p = figures.plot_params([table], tmp_path / "p.png")
    assert _is_png(tmp_path / "k.png") and _is_png(tmp_path / "p.png")
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    # the drawn points are the table's: SDR = base + K / 16 (BS 5, SFC-CA 6), error bar 0.1, params K / 10
    for encoder, base in (("band_split", 5.0), ("sfc_ca", 6.0)):
        np.testing.assert_allclose(
            k.panels[encoder], [[16, base + 1, 0.1], [32, base + 2, 0.1]], atol=1e-12
        )
        for num_bands in (16, 32):
            exp = f"mss-{encoder}-tiny-k{num_bands}"
            np.testing.assert_allclose(p.panels[exp], [num_bands / 10, base + num_bands / 16])
    assert set(k.panels) == {"band_split", "sfc_ca"} and len(p.panels) == 4
    assert k.inputs == p.inputs == (table,)
    assert _colours(tmp_path / "k.png") >= 2 and _colours(tmp_path / "p.png") >= 2  # two encoders


def test_summary_plot_needs_an_sdr_column(tmp_path):
    path = tmp_path / "t.csv"
    _table_frame(
        [("cost", "", "mss-sfc_ca-tiny-k16", "params", "params (M)", "total", 1, 0, 1, 0, 0, 3)]
    ).to_csv(path, index=False)
    with pytest.raises(UserError, match="SDR"):
        figures.plot_num_bands([path], tmp_path / "x.png")


def test_position_bias_plot_shows_encoder_and_decoder(tmp_path):
    exp = "mss-sfc_ca-tiny-k16"
    model = build_model(exp)
    with torch.no_grad():  # "learned": away from the initial bias, different per head and part
        for attn in (model.encoder.block.attn, model.decoder.block.attn):
            attn.bias.add_(3 * torch.randn_like(attn.bias))
    path = tmp_path / f"{exp}.pt"
    torch.save(model_checkpoint(model, exp), path)
    plotted = figures.plot_position_bias(path, tmp_path / "bias.png")
    assert _is_png(tmp_path / "bias.png") and plotted.inputs == (path,)
    cfg = model.config
    init = initial_position_bias(musical_bands(cfg.num_bands, cfg.n_fft, cfg.sample_rate), 1025)
    learned = {  # each (H, K, F); the decoder's (H, F, K) drawn transposed
        "encoder": model.encoder.position_bias().detach(),
        "decoder": model.decoder.block.attn.position_bias().detach().transpose(1, 2),
    }
    heads = learned["encoder"].shape[0]
    assert heads >= 2 and not torch.allclose(learned["encoder"], learned["decoder"])
    assert list(plotted.panels) == [
        f"{part} {panel}"
        for part in learned
        for panel in ["initial", *(f"head {h}" for h in range(heads))]
    ]
    for part, bias in learned.items():
        assert not torch.allclose(bias[0], init)
        np.testing.assert_array_equal(plotted.panels[f"{part} initial"], init.numpy())
        for h in range(heads):
            np.testing.assert_array_equal(plotted.panels[f"{part} head {h}"], bias[h].numpy())
    assert _colours(tmp_path / "bias.png") >= 10  # heat maps (22 measured), not flat panels (1)


def test_position_bias_refuses_a_model_without_bias(tmp_path):
    model = _save_model(tmp_path, "mss-sfc_ca-tiny-k16-nobias")
    with pytest.raises(UserError, match="no positional bias"):
        figures.plot_position_bias(model, tmp_path / "bias.png")


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
    plotted = figures.plot_attention(model, root, tmp_path / "attn.png", seconds=1.0)
    assert _is_png(tmp_path / "attn.png") and plotted.inputs[0] == model
    assert {p.stem for p in plotted.inputs[1:]} >= {"mixture", "vocals", "bass", "drums", "other"}
    # each panel is the model's encoder attention / the input power of that stem's loudest second
    loaded_model, _ = load_model(model)
    track = load_track(list_tracks(root, "mss", "test")[0])
    start = figures.loudest_window(track.mixture, track.sample_rate, 1.0)
    audio = dict(zip(TASKS["mss"].sources, track.sources), mixture=track.mixture)
    for name, wav in audio.items():
        x = torch.from_numpy(np.ascontiguousarray(wav[:, start : start + track.sample_rate]))
        attn = encoder_attention(loaded_model, x.float()).sum(dim=(1, 2))  # (T, F)
        power = loaded_model.stft(x.float()).abs().square().mean(0)  # (F, T)
        drawn_attn = plotted.panels[f"{name}: attention (log10)"]
        drawn_power = plotted.panels[f"{name}: input (dB)"]
        assert drawn_attn.shape == (1025, attn.shape[0]) == drawn_power.shape
        np.testing.assert_allclose(drawn_attn, np.log10(attn.T.numpy() + 1e-6), rtol=1e-5)
        np.testing.assert_allclose(drawn_power, 10 * np.log10(power.numpy() + 1e-10), rtol=1e-5)
        assert np.ptp(drawn_attn) > 0.1  # the queries do not attend uniformly
    assert not np.allclose(plotted.panels["vocals: input (dB)"], plotted.panels["bass: input (dB)"])
    assert _colours(tmp_path / "attn.png") >= 10  # 89 measured; a blank map gives 1
    with pytest.raises(UserError, match="nope"):
        figures.plot_attention(model, root, tmp_path / "x.png", track="nope")
