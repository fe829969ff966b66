"""The importer of the authors' released weights, on synthetic folders in the documented layout."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from sfc.errors import UserError
from sfc.models.registry import build_model, load_model
from sfc.weights.importer import import_released, load_checkpoint
from sfc.weights.keymap import experiment_from_config, to_released
from tests.weights.conftest import lightning_checkpoint, released_config

TINY_IDS = [
    "mss-sfc_ca-tiny-k16",
    "cass-sfc_ca-tiny-k16-adaptive-bandmask",
    "mss-sfc_mamba-tiny-k16",
    "cass-sfc_mamba-tiny-k16-learnable",
    "mss-band_split-tiny-k16",
]


def _randomized(exp_id: str, seed: int):
    """A model whose every tensor (buffers with values too: bias, slope) is random, so nothing maps by luck."""
    torch.manual_seed(seed)
    model = build_model(exp_id)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn_like(tensor))
    return model


def test_released_names_and_shapes_follow_the_spec():
    ca = to_released(build_model("mss-sfc_ca-small-k64"))
    expected = {
        "blocks.0.freq_path.ffn_norm.1.gamma": (96,),
        "blocks.3.frame_path.ffn.1.conv1d.weight": (256, 96, 8),
        "blocks.0.freq_path.ffn.0.deconv1d.weight": (128, 96, 8),
        "blocks.0.freq_path.ffn.0.deconv1d.bias": (96,),
        "blocks.2.frame_path.attn.qkv.weight": (288, 96),
        "blocks.1.freq_path.attn.aggregate_heads.0.weight": (96, 96),
        "encoder.query": (64, 64),
        "encoder.input_conv.0.weight": (64, 4, 3, 3),
        "encoder.input_conv.2.weight": (64,),
        "encoder.output_conv.0.weight": (96, 64, 3, 3),
        "encoder.output_conv.2.weight": (96,),
        "encoder.block.mixer.kv_proj.weight": (128, 64),
        "encoder.block.mixer.pos_bias.pos_bias": (1, 4, 64, 1025),
        "encoder.block.mixer.pos_bias.slope": (4, 1, 1),
        "encoder.block.norm_attn_kv.weight": (64,),
        "encoder.block.feed_forward.linear1.weight": (256, 64),
        "encoder.block.feed_forward.linear2.weight": (64, 128),
        "decoder.query": (1025, 64),
        "decoder.block.mixer.pos_bias.pos_bias": (1, 4, 1025, 64),
        "decoder.output_conv.weight": (64, 16, 3, 3),
    }
    assert {k: tuple(ca[k].shape) for k in expected} == expected
    assert not any(k.startswith("blocks.4.") for k in ca)
    mamba = to_released(build_model("mss-sfc_mamba-small-k64"))
    expected = {
        "encoder.freq_weights": (2142,),
        "encoder.block.forward_block.mixer.A_log": (32, 8),
        "encoder.block.backward_block.mixer.x_proj.weight": (18, 32),
        "decoder.block.forward_block.mixer.dt_proj.weight": (32, 2),
        "decoder.block.backward_block.norm.weight": (32,),
        "decoder.query_mlp.0.weight": (64,),
        "decoder.query_mlp.1.linear1.weight": (128, 64),
        "decoder.query_mlp.1.linear2.weight": (32, 64),
    }
    assert {k: tuple(mamba[k].shape) for k in expected} == expected
    bs = to_released(build_model("mss-band_split-small-k64"))
    assert "encoder.norm_fc_modules.63.fc.weight" in bs and "decoder.norm_mlp.0.hidden.0.bias" in bs


@pytest.mark.parametrize("exp_id", TINY_IDS)
def test_import_gives_the_source_model_exactly(exp_id, released_folder, tmp_path):
    source = _randomized(exp_id, 1).eval()
    folder = released_folder(exp_id, [source, source])
    meta = import_released(folder, tmp_path / "model.pt")
    assert meta["experiment"] == exp_id
    model, ckpt = load_model(tmp_path / "model.pt")
    assert ckpt["experiment"] == exp_id and ckpt["released"]["copy"] == "ema"
    ours, theirs = model.state_dict(), source.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    mix = torch.randn(1, model.num_channels, 4096)
    with torch.no_grad():
        assert torch.equal(model(mix), source(mix))


def test_band_split_layouts_are_permuted_as_documented():
    """Their input order is (channel, re/im, bin) and output rows ((source, channel), bin, re/im)."""
    model = build_model("mss-band_split-tiny-k16")
    released = to_released(model)
    chans, srcs = 2, 4
    start, end = model.encoder.bands[1]
    w = end - start
    assert w > 1
    ours = model.state_dict()
    # Write codes into the released tensors and read them back in our layout.
    code_in = torch.tensor(
        [c * 100 + ri * 10 + b for c in range(chans) for ri in range(2) for b in range(w)]
    )
    code_out = torch.tensor(
        [
            h * 10000 + (n * chans + c) * 100 + b * 10 + ri
            for h in range(2)
            for n in range(srcs)
            for c in range(chans)
            for b in range(w)
            for ri in range(2)
        ]
    )
    from sfc.weights.keymap import key_table

    table = {m.ours: m for m in key_table(model.config, ours)}
    norm = table["encoder.norms.1.weight"].to_ours(code_in.float())
    for ri in range(2):
        for c in range(chans):
            for b in range(w):
                assert norm[ri * chans * w + c * w + b] == c * 100 + ri * 10 + b
    rows = table["decoder.mlps.1.3.bias"].to_ours(code_out.float())
    num_out = 2 * srcs * chans
    for h in range(2):
        for ri in range(2):
            for n in range(srcs):
                for c in range(chans):
                    for b in range(w):
                        ours_row = h * num_out * w + ((ri * srcs + n) * chans + c) * w + b
                        assert rows[ours_row] == h * 10000 + (n * chans + c) * 100 + b * 10 + ri
    assert released["encoder.norm_fc_modules.1.norm.weight"].shape == (2 * chans * w,)


def test_average_excludes_last_and_uses_the_ema_copy(released_folder, tmp_path):
    exp_id = "mss-sfc_ca-tiny-k16"
    ema = [_randomized(exp_id, s) for s in (1, 2, 3)]
    raw = [_randomized(exp_id, s) for s in (4, 5, 6)]
    last = _randomized(exp_id, 7)
    folder = released_folder(exp_id, ema, raw_models=raw, last=last)
    meta = import_released(folder, tmp_path / "model.pt")
    assert meta["averaged"] == ["epoch=0000.ckpt", "epoch=0001.ckpt", "epoch=0002.ckpt"]
    assert meta["excluded"] == ["last.ckpt"]
    model, _ = load_model(tmp_path / "model.pt")
    for key, value in model.state_dict().items():
        expected = torch.stack([m.state_dict()[key] for m in ema]).double().mean(0).float()
        assert torch.allclose(value, expected, atol=1e-6), key
    raw_meta = import_released(folder, tmp_path / "raw.pt", use_ema=False)
    assert raw_meta["copy"] == "raw"
    raw_model, _ = load_model(tmp_path / "raw.pt")
    key = "encoder.query.query"
    assert torch.allclose(
        raw_model.state_dict()[key],
        torch.stack([m.state_dict()[key] for m in raw]).mean(0),
        atol=1e-6,
    )


def test_provenance_holds_checksums_and_source(released_folder, tmp_path):
    model = _randomized("mss-sfc_ca-tiny-k16", 1)
    folder = released_folder("mss-sfc_ca-tiny-k16", [model], last=model)
    source = {"repo_id": "a/b", "revision": "0123abcd", "folder": "musdb18hq/x"}
    import_released(folder, tmp_path / "model.pt", source=source)
    ckpt = torch.load(tmp_path / "model.pt", weights_only=False)
    released = ckpt["released"]
    assert released["source"]["revision"] == "0123abcd"
    assert set(released["checksums"]) == {
        "merged_config.yaml",
        "checkpoints/epoch=0000.ckpt",
        "checkpoints/last.ckpt",
    }
    assert all(len(v) == 64 for v in released["checksums"].values())
    assert "git" in ckpt["provenance"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["model"]["model"]["model"]["encoder"].update(
                _target_="x.TransformerEncoder"
            ),
            "_target_",
        ),
        (lambda c: c["model"]["model"]["model"]["encoder"].update(d_inner=48), "d_inner"),
        (
            lambda c: c["model"]["model"]["model"]["encoder"].pop("mask_outside_bands"),
            "mask_outside_bands",
        ),
        (lambda c: c["model"]["model"]["model"].update(n_layers=5), "n_layers=5"),
        (lambda c: c["model"]["model"]["model"].update(n_src=5), "n_src=5"),
        (lambda c: c["model"]["model"].update(n_fft=4096), "n_fft"),
        (
            lambda c: c["model"]["model"]["model"]["encoder"].update(learnable_slope=True),
            "learnable_slope",
        ),
    ],
)
def test_configs_our_zoo_cannot_express_are_refused(edit, message):
    cfg = released_config("mss-sfc_ca-small-k64")
    assert experiment_from_config(copy.deepcopy(cfg)).id == "mss-sfc_ca-small-k64"
    edit(cfg)
    with pytest.raises(UserError, match=message):
        experiment_from_config(cfg)


def test_experiment_ids_from_config_round_trip():
    for exp_id in ["cass-sfc_mamba-medium-k64", "mss-sfc_ca-small-k64-learnslope", *TINY_IDS]:
        assert experiment_from_config(released_config(exp_id)).id == exp_id


def _rewrite(path, edit):
    ckpt = torch.load(path, weights_only=False)
    edit(ckpt["state_dict"])
    torch.save(ckpt, path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("ema_model.module.model.encoder.query"), "encoder.query missing"),
        (
            lambda s: s.update({"ema_model.module.model.encoder.extra.weight": torch.zeros(2)}),
            "encoder.extra.weight: no counterpart",
        ),
        (
            lambda s: s.update({"ema_model.module.model.decoder.query": torch.zeros(3, 16)}),
            r"decoder.query: shape \(3, 16\) does not fit",
        ),
        (
            lambda s: s.update(
                {"ema_model.module.model.blocks.0.freq_path.attn.qkv.weight": torch.zeros(96, 16)}
            ),
            "qkv.weight: shape",
        ),
        (
            lambda s: s.update(
                {"ema_model.module.model.encoder.block.mixer.kv_proj.weight": torch.zeros(8, 16)}
            ),
            r"kv_proj.weight: shape \(8, 16\)",
        ),
        (lambda s: s.update({"ema_model.module.stray": torch.zeros(1)}), "unexpected tensor"),
    ],
)
def test_tensors_that_do_not_fit_are_refused(edit, message, released_folder, tmp_path):
    folder = released_folder("mss-sfc_ca-tiny-k16", [_randomized("mss-sfc_ca-tiny-k16", 1)])
    _rewrite(folder / "checkpoints" / "epoch=0000.ckpt", edit)
    with pytest.raises(UserError, match=message):
        import_released(folder, tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


class _Custom:
    pass


def test_pickled_objects_outside_the_allow_list_are_refused(tmp_path):
    model = build_model("mss-sfc_ca-tiny-k16")
    ckpt = lightning_checkpoint(model, model, 0)
    loaded = load_checkpoint_roundtrip(ckpt, tmp_path)
    assert loaded["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"] == 0
    ckpt["hyper_parameters"] = _Custom()
    torch.save(ckpt, tmp_path / "bad.ckpt")
    with pytest.raises(UserError, match="allow-list.*_Custom"):
        load_checkpoint(tmp_path / "bad.ckpt")


def load_checkpoint_roundtrip(ckpt, tmp_path):
    torch.save(ckpt, tmp_path / "ok.ckpt")
    return load_checkpoint(tmp_path / "ok.ckpt")


def test_folder_without_checkpoints_is_refused(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "merged_config.yaml").write_text(
        yaml.safe_dump(released_config("mss-sfc_ca-tiny-k16"))
    )
    with pytest.raises(UserError, match="no checkpoints"):
        import_released(tmp_path / "m", tmp_path / "out.pt")


def test_an_unexpected_experiment_id_is_refused(released_folder, tmp_path):
    folder = released_folder("mss-sfc_ca-tiny-k16", [build_model("mss-sfc_ca-tiny-k16")])
    with pytest.raises(UserError, match="describes mss-sfc_ca-tiny-k16, not the expected"):
        import_released(folder, tmp_path / "m.pt", expect="mss-sfc_ca-tiny-k16-adaptive")


def test_fused_key_value_rows_are_k_then_v_as_documented():
    """Their kv_proj output is [k; v], each half split into heads; ours must compute the same k, v."""
    from sfc.weights.keymap import key_table

    model = build_model("mss-sfc_ca-small-k64")
    attn = model.encoder.block.attn
    table = {m.ours: m for m in key_table(model.config, model.state_dict())}
    theirs = torch.randn(128, 64)
    with torch.no_grad():
        attn.to_kv.weight.copy_(table["encoder.block.attn.to_kv.weight"].to_ours(theirs))
    x = torch.randn(2, 10, 64)
    k_theirs, v_theirs = (x @ theirs.T).chunk(2, dim=-1)  # (B', L, D') each
    k_theirs = k_theirs.view(2, 10, 4, 16).transpose(1, 2)  # (B', H, L, D'/H)
    v_theirs = v_theirs.view(2, 10, 4, 16).transpose(1, 2)
    with torch.no_grad():
        k_ours, v_ours = attn.split_heads(attn.to_kv(x)).chunk(2, dim=-1)
    assert torch.allclose(k_ours, k_theirs, atol=1e-6) and torch.allclose(
        v_ours, v_theirs, atol=1e-6
    )
    back = table["encoder.block.attn.to_kv.weight"].to_theirs(attn.to_kv.weight.detach())
    assert torch.equal(back, theirs)
