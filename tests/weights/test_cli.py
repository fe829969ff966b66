"""`sfc weights list/download/import` end to end against a loopback Hub, then `sfc separate` with the result."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from sfc.cli import main
from sfc.models.registry import build_model, load_model
from tests.weights.hub_server import COMMIT, FakeHub

REPO = "someone/released"
FOLDER = "musdb18hq/locoformer-tiny.enc-crossattn16dim.dec-crossattn16dim.musical16.learnable-query"


def test_list_download_import_separate(released_folder, tmp_path, capsys):
    source = build_model("mss-sfc_ca-tiny-k16").eval()
    local = released_folder("mss-sfc_ca-tiny-k16", [source, source], last=source)
    files = {
        f"{FOLDER}/{p.relative_to(local).as_posix()}": p.read_bytes()
        for p in local.rglob("*")
        if p.is_file()
    }
    with FakeHub(REPO, files) as hub:
        hub_args = ["--repo", REPO, "--endpoint", hub.endpoint]
        assert main(["weights", "list", *hub_args]) == 0
        assert FOLDER in capsys.readouterr().out.splitlines()
        manifest = tmp_path / "download.json"
        cache = tmp_path / "cache"
        args = ["weights", "download", FOLDER, *hub_args, "--cache-dir", str(cache)]
        assert main([*args, "--manifest", str(manifest)]) == 0
    record = json.loads(manifest.read_text())
    assert record["revision"] == COMMIT and len(record["sha256"]) == 4
    out = tmp_path / "model.pt"
    assert main(["weights", "import", str(manifest), "--out", str(out)]) == 0
    assert "as mss-sfc_ca-tiny-k16" in capsys.readouterr().out
    model, ckpt = load_model(out)
    assert ckpt["released"]["source"]["revision"] == COMMIT
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())

    wav = tmp_path / "song.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, (44100, 2)), 44100)
    sep = tmp_path / "sep"
    assert main(["separate", str(out), str(wav), "--out", str(sep), "--device", "cpu"]) == 0
    stems = sorted(p.name for p in (sep / "song").glob("*.wav"))
    assert stems == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]


def test_import_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["weights", "import", str(tmp_path / "nope"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "released model folder not found" in capsys.readouterr().err


def test_separate_with_a_released_model_name(released_folder, tmp_path):
    """`sfc separate <dataset>/<recipe> ...` downloads and imports the model on first use."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    local = released_folder("mss-sfc_ca-tiny-k16", [build_model("mss-sfc_ca-tiny-k16")])
    files = {
        f"{FOLDER}/{p.relative_to(local).as_posix()}": p.read_bytes()
        for p in local.rglob("*")
        if p.is_file()
    }
    wav = tmp_path / "song.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, (44100, 2)), 44100)
    repo = Path(__file__).resolve().parents[2]
    with FakeHub("kohei0209/spectral_feature_compression", files) as hub:
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.endpoint,
            "HF_HOME": str(tmp_path / "hf"),
            "SFC_CACHE": str(tmp_path / "sfc"),
            "PYTHONPATH": str(repo),
        }
        cmd = [
            sys.executable,
            "-m",
            "sfc",
            "separate",
            FOLDER,
            str(wav),
            "--out",
            str(tmp_path / "sep"),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / "sep" / "song").glob("*.wav"))) == 4
    assert list((tmp_path / "sfc" / "released").rglob("*.pt"))  # imported once, cached
