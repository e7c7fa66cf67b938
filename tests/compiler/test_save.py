"""Saving hybrid models: stale data files, non-regular targets, permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hybridtrt import Input, SaveError, TensorRTConfig, convert, load
from tests import models

def _config(width: int) -> TensorRTConfig:
    return TensorRTConfig(inputs=[Input("x", [1, width], [1, width], [1, width])], disable_ops=["Sin"])


@pytest.fixture(scope="module")
def hybrid():  # type: ignore[no-untyped-def]
    return convert(models.split_chain(width=512), _config(512))


def _data_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.endswith(".data")}


def test_saving_keeps_the_data_of_a_neighbour_whose_name_starts_alike(hybrid, tmp_path: Path) -> None:
    other = hybrid.save(tmp_path / "model.onnx.old.onnx", external_data=True)
    hybrid.save(tmp_path / "model.onnx", external_data=True)
    load(other)  # its data file must still be there


def test_overwrite_removes_only_the_data_the_old_model_read(tmp_path: Path) -> None:
    first = convert(models.split_chain(width=512), _config(512))
    second = convert(models.split_chain(width=256), _config(256))
    target = first.save(tmp_path / "m.onnx", external_data=True)
    before = _data_files(tmp_path)
    (tmp_path / "m.onnx.foreign.data").write_bytes(b"not ours")
    second.save(target, external_data=True)
    after = _data_files(tmp_path)
    assert not before & after and "m.onnx.foreign.data" in after and len(after) == 2
    load(target)


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_non_regular_targets_are_refused(hybrid, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "m.onnx"
    if kind == "symlink":
        (tmp_path / "real.onnx").write_bytes(b"x")
        target.symlink_to(tmp_path / "real.onnx")
    else:
        os.mkfifo(target)
    with pytest.raises(SaveError, match="m.onnx: it exists and is not a regular file"):
        hybrid.save(target)
    assert target.is_symlink() if kind == "symlink" else stat.S_ISFIFO(os.lstat(target).st_mode)


def test_data_file_gets_the_model_files_permissions(hybrid, tmp_path: Path) -> None:
    target = hybrid.save(tmp_path / "m.onnx", external_data=True)
    (data,) = _data_files(tmp_path)
    assert stat.S_IMODE((tmp_path / data).stat().st_mode) == stat.S_IMODE(target.stat().st_mode)


@pytest.mark.parametrize("value", ["0", "-1", " 1", "01", "1.0", ""])
def test_non_canonical_format_versions_are_refused(hybrid, tmp_path: Path, value: str) -> None:
    import onnx

    from hybridtrt import FormatError

    model = onnx.ModelProto()
    model.CopyFrom(hybrid.model)
    for prop in model.metadata_props:
        if prop.key == "hybridtrt.format_version":
            prop.value = value
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(FormatError, match="is not a positive integer version"):
        load(tmp_path / "m.onnx")


def test_duplicate_metadata_keys_are_refused(hybrid, tmp_path: Path) -> None:
    import onnx

    from hybridtrt import FormatError

    model = onnx.ModelProto()
    model.CopyFrom(hybrid.model)
    onnx.helper.set_model_props(model, {})
    model.metadata_props.extend(hybrid.model.metadata_props)
    model.metadata_props.add(key="hybridtrt.format_version", value="2")
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(FormatError, match="appear more than once"):
        load(tmp_path / "m.onnx")


def test_ir_version_newer_than_onnx_reads_is_refused(hybrid, tmp_path: Path) -> None:
    import onnx

    from hybridtrt import FormatError

    model = onnx.ModelProto()
    model.CopyFrom(hybrid.model)
    model.ir_version = 99
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(FormatError, match="has IR version 99"):
        load(tmp_path / "m.onnx")


def test_a_save_removes_what_a_killed_save_to_the_same_path_left(tmp_path: Path) -> None:
    hybrid = convert(models.split_chain(width=64), _config(64))
    killed = tmp_path / ".hybridtrt-m.onnx-k1ll3d"  # a save to m.onnx died while staging
    killed.mkdir()
    (killed / "m.onnx").write_bytes(b"half")
    other = tmp_path / ".hybridtrt-n.onnx-busy"  # another path's save, maybe running now
    other.mkdir()
    hybrid.save(tmp_path / "m.onnx")
    assert not killed.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hybridtrt-n.onnx-busy", "m.onnx"]


def test_a_default_save_keeps_the_weights_inline_up_to_the_limit(hybrid, tmp_path, monkeypatch):
    from hybridtrt.core import hybrid as module

    size = hybrid.model.ByteSize()  # as the model is before the save stamps its digest in
    monkeypatch.setattr(module, "_EXTERNAL_ABOVE", size)
    inline = hybrid.save(tmp_path / "inline" / "m.onnx")
    assert _data_files(inline.parent) == set()
    monkeypatch.setattr(module, "_EXTERNAL_ABOVE", size - 1)
    outside = hybrid.save(tmp_path / "outside" / "m.onnx")
    assert len(_data_files(outside.parent)) == 1
    assert hybrid.model.ByteSize() == size  # the stamp is gone again
    assert [e.subgraph_sha256 for e in load(inline).engines] == [
        e.subgraph_sha256 for e in load(outside).engines]
    assert load(inline).model.SerializeToString() == inline.read_bytes()
