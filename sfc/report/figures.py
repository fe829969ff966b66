"""The paper's figures (matplotlib, Agg backend), each written atomically to an explicit path.

Every plotting function returns a ``Plotted``: the arrays it handed to matplotlib, read back from the
drawn artists, so tests compare what is shown with the model or table it came from.

* ``plot_position_bias``: initial vs learned positional bias of a trained SFC-CA encoder and decoder
  (spec §12 fig. 4).
* ``plot_attention``: encoder attention-weight spectrograms beside the input spectrograms, for every
  stem and the mixture of one test track (spec §12 fig. 5; aggregation spec §14 item 13).
* ``plot_num_bands``: SDR vs the number of bands K per encoder (spec §10 Table D).
* ``plot_params``: parameters vs SDR (spec §10 Tables A/C).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sfc.errors import UserError  # noqa: E402
from sfc.experiments import parse_experiment  # noqa: E402
from sfc.provenance import atomic_file  # noqa: E402

# Display labels live only here (house style: one string per concept elsewhere).
ENCODER_LABELS = {"band_split": "BS", "sfc_ca": "SFC-CA", "sfc_mamba": "SFC-Mamba"}
ENCODER_MARKERS = {"band_split": "s", "sfc_ca": "o", "sfc_mamba": "^"}
# metrics tried in this order for the SDR axis of the summary plots
SDR_COLUMNS = ("csdr", "usdr", "snr", "si_sdr")
# ASSUMPTION: spec §12 suggests clipping the bias colour scale for visibility; [-20, 0] as proposed.
BIAS_RANGE = (-20.0, 0.0)


@dataclass(frozen=True)
class Plotted:
    """What a figure shows.

    Attributes:
        path: the image written.
        panels: panel name -> the array drawn there (heat maps: the image array, rows = y axis;
            line and scatter plots: one row per point).
        inputs: files read to draw it (for the provenance record).
    """

    path: Path
    panels: dict[str, np.ndarray]
    inputs: tuple[Path, ...] = field(default=())


def _image_data(ax: plt.Axes) -> np.ndarray:
    """The array of the (single) image drawn on ``ax``."""
    return np.array(np.ma.getdata(ax.images[-1].get_array()))


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save through a temporary file in the same folder, then rename (atomic)."""
    try:
        with atomic_file(path, "wb") as handle:
            fig.savefig(handle, format=Path(path).suffix[1:], dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- positional bias


def plot_position_bias(model_path: str | Path, out: str | Path) -> Plotted:
    """Heat maps of the initial bias and each head's learned bias s_h·B_h, encoder and decoder.

    PAPER: spec §12 fig. 4: initial vs learned bias of the encoder and the decoder of a trained SFC-CA.
    ASSUMPTION: the decoder's bias B_dec (H, F, K) is drawn transposed, as (K, F), so both rows share
    their axes and the decoder's initial bias (the transpose of the encoder's, spec §5.2) is the same
    picture as the encoder's.

    Args:
        model_path: a trained SFC-CA model file.
        out: the PNG to write.

    Returns:
        Panels ``<part> initial`` and ``<part> head h`` for part = encoder, decoder, each (K, F),
        as drawn.
    """
    import torch

    from sfc.bands import musical_bands
    from sfc.models import load_model
    from sfc.models.sfc_ca import initial_position_bias

    model, _ = load_model(model_path)
    cfg = model.config
    if cfg.encoder != "sfc_ca" or not hasattr(model.encoder, "position_bias"):
        raise UserError(
            f"{model_path}: positional-bias plots need an SFC-CA model, got {cfg.encoder}"
        )
    if cfg.pos_bias == "none":
        raise UserError(f"{model_path}: this SFC-CA model has no positional bias (pos_bias 'none')")
    bands = musical_bands(cfg.num_bands, cfg.n_fft, cfg.sample_rate)
    with torch.no_grad():
        init = initial_position_bias(bands, cfg.num_freqs).float().cpu().numpy()  # (K, F)
        learned = {
            "encoder": model.encoder.position_bias().float().cpu().numpy(),  # (H, K, F)
            "decoder": model.decoder.block.attn.position_bias()
            .float()
            .cpu()
            .numpy()
            .transpose(0, 2, 1),  # (H, F, K) -> (H, K, F)
        }
    rows = [
        [(f"{part} initial", init)] + [(f"{part} head {h}", b) for h, b in enumerate(bias)]
        for part, bias in learned.items()
    ]
    cols = len(rows[0])
    fig, axes = plt.subplots(2, cols, figsize=(3.2 * cols, 6.0), squeeze=False)
    fig.subplots_adjust(hspace=0.35)
    for ax, (title, bias) in zip(axes.flat, [panel for row in rows for panel in row]):
        image = ax.imshow(
            bias,
            aspect="auto",
            origin="lower",
            cmap="viridis",
            vmin=BIAS_RANGE[0],
            vmax=BIAS_RANGE[1],
            interpolation="nearest",
        )
        ax.set_title(title.replace(" head", ", learned, head"), fontsize=9)
    for ax in axes[1]:
        ax.set_xlabel("frequency bin")
    axes[0][0].set_ylabel("band (query) k")
    axes[1][0].set_ylabel("band (key) k; B_dec transposed")
    fig.colorbar(
        image, ax=axes.ravel().tolist(), shrink=0.8, label=f"bias (clipped to {list(BIAS_RANGE)})"
    )
    fig.suptitle(f"SFC-CA positional bias, K={cfg.num_bands}", fontsize=10, y=1.02)
    drawn = {title: _image_data(ax) for ax, (title, _) in zip(axes.flat, sum(rows, []))}
    save_figure(fig, out)
    return Plotted(Path(out), drawn, (Path(model_path),))


# ----------------------------------------------------------------------------- attention maps


def loudest_window(mix: np.ndarray, sample_rate: int, seconds: float) -> int:
    """Start sample of the ``seconds``-long window (1-s grid) with the most mixture energy."""
    length = min(mix.shape[-1], int(seconds * sample_rate))
    energy = np.square(mix).sum(0)  # (L,)
    starts = range(0, max(1, mix.shape[-1] - length + 1), sample_rate)
    cumsum = np.concatenate([[0.0], np.cumsum(energy)])
    return max(starts, key=lambda s: cumsum[s + length] - cumsum[s])


def plot_attention(
    model_path: str | Path,
    data_root: str | Path,
    out: str | Path,
    split: str = "test",
    track: str | None = None,
    seconds: float = 10.0,
) -> Plotted:
    """Input spectrograms beside SFC-CA encoder attention maps, for every stem and the mixture.

    ASSUMPTION (spec §14 item 13): the attention weights (T, H, K, F) are summed over heads and queries
    into a (T, F) map shown on a log colour scale; excerpt = the loudest ``seconds`` of the track
    (default track: the first of the split).

    Returns:
        Panels ``<stem>: input (dB)`` (F, T) and ``<stem>: attention (log10)`` (F, T) per stem and the
        mixture, as drawn; inputs = the model and the audio files read.
    """
    import torch

    from sfc.data.tracks import list_tracks, load_track
    from sfc.experiments import TASKS
    from sfc.models import load_model
    from sfc.models.sfc_ca import encoder_attention

    model, _ = load_model(model_path)
    if model.config.encoder != "sfc_ca":
        raise UserError(
            f"{model_path}: attention maps need an SFC-CA model, got {model.config.encoder}"
        )
    task = "mss" if model.num_sources == len(TASKS["mss"].sources) else "cass"
    refs = list_tracks(data_root, task, split)
    chosen = [r for r in refs if track is None or r.name == track]
    if not chosen:
        raise UserError(f"track {track!r} not in the {split} split of {data_root}")
    loaded = load_track(chosen[0])
    audio = dict(zip(TASKS[task].sources, loaded.sources))  # name -> (C, L)
    audio["mixture"] = loaded.mixture
    sr = loaded.sample_rate
    start = loudest_window(loaded.mixture, sr, seconds)
    stop = start + int(seconds * sr)
    fig, axes = plt.subplots(len(audio), 2, figsize=(9, 2.0 * len(audio)), squeeze=False)
    for row, (name, wav) in enumerate(audio.items()):
        x = torch.from_numpy(np.ascontiguousarray(wav[:, start:stop], dtype=np.float32))  # (C, L)
        with torch.no_grad():
            power = model.stft(x).abs().square().mean(0)  # (F, T)
            attn = encoder_attention(model, x).float().sum(dim=(1, 2))  # (T, F)
        length = x.shape[-1]
        _spectrogram(
            axes[row][0], 10 * np.log10(power.numpy() + 1e-10), f"{name}: input (dB)", sr, length
        )
        _spectrogram(
            axes[row][1], np.log10(attn.T.numpy() + 1e-6), f"{name}: attention (log10)", sr, length
        )
    fig.suptitle(
        f"SFC-CA encoder attention (sum over heads and queries), {chosen[0].name}", fontsize=10
    )
    fig.tight_layout()
    drawn = {ax.get_title(): _image_data(ax) for ax in axes.flat}
    save_figure(fig, out)
    audio = sorted(Path(chosen[0].path).glob("*.wav"))
    return Plotted(Path(out), drawn, (Path(model_path), *audio))


def _spectrogram(ax: plt.Axes, image: np.ndarray, title: str, sr: int, length: int) -> None:
    extent = (0.0, length / sr, 0.0, sr / 2000.0)
    ax.imshow(image, aspect="auto", origin="lower", cmap="magma", extent=extent)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("time (s)", fontsize=7)
    ax.set_ylabel("freq. (kHz)", fontsize=7)


# ----------------------------------------------------------------------------- summary plots


def _load_tables(paths: list[str | Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    if not frames:
        raise UserError("no table CSV given")
    table = pd.concat(frames, ignore_index=True)
    table["encoder"] = [parse_experiment(e).encoder for e in table["experiment"]]
    return table


def _sdr_column(table: pd.DataFrame) -> str:
    present = set(table.loc[table["target"] == "avg", "column"])
    for column in SDR_COLUMNS:
        if column in present:
            return column
    raise UserError(f"no SDR-like column ({list(SDR_COLUMNS)}) with an 'avg' target in the table")


def plot_num_bands(table_csvs: list[str | Path], out: str | Path) -> Plotted:
    """Average SDR against the number of bands K, one line per encoder (error bars: seed std).

    Returns:
        One panel per encoder: rows (K, SDR, error bar half-length), as drawn.
    """
    table = _load_tables(table_csvs)
    column = _sdr_column(table)
    rows = table[(table["column"] == column) & (table["target"] == "avg")].copy()
    rows["K"] = [parse_experiment(e).num_bands for e in rows["experiment"]]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    drawn = {}
    for encoder, group in rows.groupby("encoder", sort=False):
        group = group.sort_values("K")
        bars = ax.errorbar(
            group["K"],
            group["ours"],
            yerr=group["spread"].fillna(0.0),
            capsize=3,
            marker=ENCODER_MARKERS.get(encoder, "o"),
            label=ENCODER_LABELS.get(encoder, encoder),
        )
        line, _, (segments,) = bars  # data line, caps, vertical error segments
        half = [abs(seg[1, 1] - seg[0, 1]) / 2 for seg in segments.get_segments()]
        drawn[encoder] = np.column_stack([line.get_xdata(), line.get_ydata(), half]).astype(float)
    ax.set_xlabel("number of bands K")
    ax.set_ylabel(f"avg {rows['label'].iloc[0]} (dB)")
    ax.set_xticks(sorted(set(rows["K"])))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out)
    return Plotted(Path(out), drawn, tuple(Path(p) for p in table_csvs))


def plot_params(table_csvs: list[str | Path], out: str | Path) -> Plotted:
    """Average SDR against the parameter count, one point per model, labelled with its size and K.

    Returns:
        One panel per experiment: its point (params in M, SDR), as drawn.
    """
    table = _load_tables(table_csvs)
    column = _sdr_column(table)
    sdr = table[(table["column"] == column) & (table["target"] == "avg")].set_index("experiment")
    params = table[table["column"] == "params"].set_index("experiment")["ours"]
    common = [e for e in sdr.index if e in params.index]
    if not common:
        raise UserError("the tables hold no model with both a parameter count and an SDR")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    drawn = {}
    for exp in common:
        parsed = parse_experiment(exp)
        points = ax.scatter(
            params[exp],
            sdr.loc[exp, "ours"],
            marker=ENCODER_MARKERS.get(parsed.encoder, "o"),
            label=ENCODER_LABELS.get(parsed.encoder, parsed.encoder),
        )
        drawn[exp] = np.array(points.get_offsets()[0], dtype=float)
        ax.annotate(
            f"{parsed.size} K={parsed.num_bands}",
            (params[exp], sdr.loc[exp, "ours"]),
            fontsize=6,
            xytext=(3, 3),
            textcoords="offset points",
        )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel(f"avg {sdr['label'].iloc[0]} (dB)")
    ax.grid(alpha=0.3)
    save_figure(fig, out)
    return Plotted(Path(out), drawn, tuple(Path(p) for p in table_csvs))
