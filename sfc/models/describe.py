"""`sfc describe <experiment-id>`: parameter counts, FLOPs per second of audio and (optionally) RTF.

FLOPs follow spec §14 item 8: `torch.utils.flop_counter` on a 1-s input at 44.1 kHz (matmuls,
convolutions and attention; 1 multiply-add = 2 FLOPs), batch 1, divided by the duration. The paper's
"FLOPs (G/s)" match our multiply-accumulates (`gmacs_per_second`); see the README's cost table.
RTF (spec §14 item 8): wall time of one 12-s chunk, batch 1, bf16 autocast on CUDA, divided by 12 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from sfc.experiments import parse_experiment
from sfc.models import SeparationModel, build_model


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters of the whole model and of its parts (encoder/decoder/separator for a
    SeparationModel; the total only for the U-Net families)."""
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    if not isinstance(model, SeparationModel):
        return {"total": count(model)}
    return {
        "total": count(model),
        "encoder": count(model.encoder),
        "decoder": count(model.decoder),
        "separator": count(model.separator),
    }


def flops_per_second(model: nn.Module, seconds: float = 1.0) -> float:
    """Forward FLOPs per second of audio, counted on one `seconds`-long random input."""
    was_training = model.training
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    model.eval()
    try:
        x = torch.randn(1, model.num_channels, int(seconds * model.sample_rate))
        # The math backend decomposes attention into counted matmuls; the CPU flash kernel counts as 0.
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            model(x)
        return counter.get_total_flops() / seconds
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


@torch.no_grad()
def real_time_factor(
    model: nn.Module, device: str = "cpu", seconds: float = 12.0, repeats: int = 5
) -> float:
    """Median wall time of one forward pass on a `seconds`-long input divided by `seconds`."""
    device = torch.device(device)
    model = model.eval().to(device)
    x = torch.randn(1, model.num_channels, int(seconds * model.sample_rate), device=device)
    times = []
    for i in range(repeats + 1):  # the first pass warms up kernels and allocators
        start = time.perf_counter()
        with torch.autocast(
            device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"
        ):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times) / seconds


def describe(exp_id: str, flops: bool = True, rtf_device: str | None = None) -> dict:
    """Everything `sfc describe` prints for one experiment id."""
    exp = parse_experiment(exp_id)
    model = build_model(exp.model_config())
    info = {
        "experiment": exp.id,
        "model_config": model.config.to_dict(),
        "params": count_parameters(model),
    }
    if flops:
        gflops = flops_per_second(model) / 1e9
        info["gflops_per_second"] = round(gflops, 3)
        info["gmacs_per_second"] = round(gflops / 2, 3)
    if rtf_device:
        info["rtf"] = round(real_time_factor(model, rtf_device), 5)
        info["rtf_device"] = (
            torch.cuda.get_device_name(rtf_device) if rtf_device.startswith("cuda") else "cpu"
        )
    return info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", nargs="+", help="experiment id(s), e.g. mss-sfc_ca-small-k64")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (fast)")
    parser.add_argument(
        "--rtf", metavar="DEVICE", help="also measure the real-time factor on DEVICE (cpu, cuda)"
    )


def main(args: argparse.Namespace) -> int:
    for exp_id in args.experiment:
        print(json.dumps(describe(exp_id, flops=not args.no_flops, rtf_device=args.rtf)))
    return 0
