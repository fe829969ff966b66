"""CLI reliability: outputs checked before work, OS errors as one line, umask honoured, --version/help."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import stat
from pathlib import Path

import pytest

from sfc.cli import COMMANDS, main


def _blocked(tmp_path: Path) -> Path:
    """A path whose parent is a regular file: not creatable, even by root."""
    (tmp_path / "plain").write_text("not a folder")
    return tmp_path / "plain" / "sub"


@pytest.mark.parametrize("option", ["--output", "--work-dir"])
def test_train_checks_outputs_before_training(tmp_path, monkeypatch, capsys, option):
    import sfc.train.engine as engine

    calls = []
    monkeypatch.setattr(engine, "train", lambda *a, **k: calls.append(a))
    paths = {
        "--data-root": tmp_path / "data",
        "--cache-dir": tmp_path / "cache",
        "--work-dir": tmp_path / "work",
        "--output": tmp_path / "models" / "m.pt",
    }
    paths[option] = _blocked(tmp_path) / ("m.pt" if option == "--output" else "")
    argv = ["train", "mss-sfc_ca-tiny-k32", "--recipe", "demo"]
    for key, value in paths.items():
        argv += [key, str(value)]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and option in err and "plain" in err and "Traceback" not in err
    assert not calls


def test_evaluate_checks_outputs_before_loading(tmp_path, capsys):
    rc = main(
        [
            "evaluate",
            str(tmp_path / "missing.pt"),  # would fail later: the output check comes first
            "--data-root",
            str(tmp_path),
            "--task",
            "mss",
            "--out-dir",
            str(_blocked(tmp_path)),
            "--scores",
            str(tmp_path / "s.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--out-dir" in err and "plain" in err


@pytest.mark.parametrize(
    "exc, words",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/x.npy"), "No space left"),
        (PermissionError(errno.EACCES, "Permission denied", "/data/y"), "Permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/z"), "Read-only"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/gone"), "No such file"),
    ],
)
def test_os_errors_are_one_line_with_path_and_operation(monkeypatch, capsys, exc, words):
    import sfc.experiments as experiments

    def fail(args):
        os.stat  # noqa: B018  (the operation named is the failing frame's function)
        raise exc

    monkeypatch.setattr(experiments, "main", fail)
    rc = main(["experiments"])
    err = capsys.readouterr().err
    assert rc == 74, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert words in lines[0] and exc.filename in lines[0] and "fail" in lines[0]


def test_files_honour_the_umask(tmp_path):
    from sfc.provenance import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        os.umask(0o007)
        write_text_atomic(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o660


def test_version_and_help(capsys):
    import sfc

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sfc {sfc.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "source separation" in out.lower() and "Command-line entry point" not in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help(name):
    parser = argparse.ArgumentParser()
    importlib.import_module(COMMANDS[name][0]).add_arguments(parser)
    missing = [a.dest for a in parser._actions if not a.help]
    for sub in parser._actions:
        if isinstance(sub, argparse._SubParsersAction):
            for choice, p in sub.choices.items():
                missing += [f"{choice} {a.dest}" for a in p._actions if not a.help]
    assert not missing, f"sfc {name}: options without help: {missing}"
