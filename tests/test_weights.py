"""Checkpoint registry, cache, checksums, strict loading and the weights CLI (no network)."""

from __future__ import annotations

import argparse
import io
import os
import urllib.error
import urllib.request

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import pytest
import torch
from checkpoints import checkpoint_from_manifest

from breastlib.cli import weights as weights_cli
from breastlib.encoders import ENCODERS, clear_cache, get_encoder
from breastlib.encoders import weights as w
from breastlib.errors import BreastlibError

REAL_URLOPEN = urllib.request.urlopen  # the autouse fixture replaces it; mirrors restore it


@pytest.fixture(autouse=True)
def weights_home(tmp_path, monkeypatch):
    monkeypatch.setenv("BREASTLIB_WEIGHTS", str(tmp_path / "weights"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    clear_cache()
    yield tmp_path / "weights"
    clear_cache()


def _meta_network(name):
    from breastlib.encoders import _build

    with torch.device("meta"):
        return _build(ENCODERS[name])


def _map(name, state):
    from breastlib.encoders import _map as mapper

    return mapper(ENCODERS[name], state)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_manifest_checkpoints_load_strictly(name):
    """Every encoder loads its registry checkpoint in the published layout: SAM, MedSAM and
    SSLSAM full Sam files, DINOv2 Meta's hub files, BiomedCLIP open_clip's, MedCLIP the
    Hugging Face layout of MedCLIP-SAMv2."""
    manifest = w.load_manifest(w.CHECKPOINTS[ENCODERS[name].checkpoint].manifest)
    assert manifest["source"] and manifest["parameters"]
    mapped, unexpected = _map(name, checkpoint_from_manifest(manifest))
    w.load_strict(_meta_network(name), mapped, unexpected, source=name)


def _own_layout(name):
    """A checkpoint with the network's own names (constant values, tiny)."""
    shapes = {k: list(v.shape) for k, v in _meta_network(name).state_dict().items()}
    return checkpoint_from_manifest({"parameters": shapes})


@pytest.mark.parametrize(
    ("name", "layout"),
    [("dinov2-s", "timm"), ("biomedclip", "bare"), ("biomedclip", "open_clip-module"),
     ("sam", "bare")],
)
def test_also_accepted_layouts_load_strictly(name, layout):
    if layout == "open_clip-module":
        manifest = w.load_manifest(w.CHECKPOINTS[ENCODERS[name].checkpoint].manifest)
        state = {"module." + k: v for k, v in checkpoint_from_manifest(manifest).items()}
        state["module.text.proj.0.weight"] = torch.zeros(640, 768)
    else:
        state = _own_layout(name)
    mapped, unexpected = _map(name, state)
    w.load_strict(_meta_network(name), mapped, unexpected, source=name)


def test_every_checkpoint_has_a_manifest_and_no_invented_hash():
    for ckpt in w.CHECKPOINTS.values():
        assert (w.MANIFEST_DIR / ckpt.manifest).is_file()
        assert ckpt.sha256 is None or len(ckpt.sha256) == 64
    for spec in ENCODERS.values():
        assert spec.checkpoint in w.CHECKPOINTS


def _save(state, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_dinov2_meta_layout_loads_from_cache_and_maps_class_position(weights_home):
    state = checkpoint_from_manifest(w.load_manifest("dinov2_vits14_reg4.json"))
    _save(state, weights_home / w.CHECKPOINTS["dinov2_vits14_reg4"].filename)
    enc = get_encoder("dinov2-s", weights="pretrained", input_size=28, device="cpu")
    net = enc.network
    assert torch.equal(net.cls_token, state["cls_token"] + state["pos_embed"][:, :1])
    assert torch.equal(net.pos_embed, state["pos_embed"][:, 1:])
    assert torch.equal(net.reg_token, state["register_tokens"])
    assert enc.encode(torch.rand(1, 1, 28, 28)).shape == (1, 384, 2, 2)


def test_sam_full_and_dataparallel_layouts_load_by_path(tmp_path):
    manifest = w.load_manifest("sam_vit_b.json")
    state = checkpoint_from_manifest(manifest)
    state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"] = torch.zeros(2, 128)
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 256)
    path = _save(state, tmp_path / "sam.pth")
    enc = get_encoder("sam", weights=str(path), input_size=32, device="cpu")
    assert torch.equal(enc.network.neck[0].weight, state["image_encoder.neck.0.weight"])
    parallel = _save({"module." + k: v for k, v in state.items()}, tmp_path / "ssl.pth")
    get_encoder("sslsam", weights=str(parallel), input_size=32, device="cpu")


def test_wrong_keys_are_listed(tmp_path):
    state = checkpoint_from_manifest(w.load_manifest("sam_vit_b.json"))
    del state["image_encoder.neck.0.weight"]
    state["image_encoder.blocks.0.adapter.weight"] = torch.zeros(3)
    state["decoder_head.weight"] = torch.zeros(3)
    path = _save(state, tmp_path / "bad.pth")
    with pytest.raises(w.WeightsError) as err:
        get_encoder("sam", weights=str(path), input_size=32, device="cpu")
    text = str(err.value)
    assert "1 missing: neck.0.weight" in text
    assert "blocks.0.adapter.weight" in text and "decoder_head.weight" in text


def test_wrong_shape_and_wrong_family_rejected(tmp_path):
    state = checkpoint_from_manifest(w.load_manifest("biomedclip_vit_b16.json"))
    state["visual.trunk.pos_embed"] = torch.zeros(1, 50, 768)
    path = _save(state, tmp_path / "clip.bin")
    with pytest.raises(w.WeightsError, match=r"1 shape: pos_embed \(1, 50, 768\)"):
        get_encoder("biomedclip", weights=str(path), device="cpu")
    dino = _save(checkpoint_from_manifest(w.load_manifest("dinov2_vits14_reg4.json")),
                 tmp_path / "dino.pth")
    with pytest.raises(w.WeightsError, match="missing"):
        get_encoder("sam", weights=str(dino), input_size=32, device="cpu")


def test_unreadable_and_unsafe_files_rejected(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(w.WeightsError, match="not a readable PyTorch checkpoint"):
        w.read_state_dict(junk)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"net": argparse.Namespace(a=1)}, unsafe)  # arbitrary objects: refused
    with pytest.raises(w.WeightsError):
        w.read_state_dict(unsafe)
    with pytest.raises(w.WeightsError, match="checkpoint file not found"):
        get_encoder("sam", weights=str(tmp_path / "absent.pth"), device="cpu")


def test_missing_pretrained_says_where_and_how(weights_home):
    with pytest.raises(w.WeightsError) as err:
        get_encoder("sam", weights="pretrained", device="cpu")
    text = str(err.value)
    assert str(weights_home / "sam_vit_b_01ec64.pth") in text
    assert "breastlib weights download sam_vit_b" in text
    with pytest.raises(w.WeightsError, match="by hand from bowang-lab/MedSAM"):
        get_encoder("medsam", weights="pretrained", device="cpu")


def test_checksums_published_pinned_and_mismatch(weights_home, monkeypatch):
    path = _save({"x": torch.zeros(2)}, weights_home / "sam_vit_b_01ec64.pth")
    assert w.verify("sam_vit_b")["origin"] == "unverified"
    row = w.verify("sam_vit_b", record=True)
    assert row["ok"] and w.expected_sha256("sam_vit_b") == (row["sha256"], "pinned")
    assert w.locate("sam_vit_b") == path
    _save({"x": torch.ones(2)}, path)  # a different file under the pinned name
    with pytest.raises(w.WeightsError, match="does not match the pinned hash"):
        w.locate("sam_vit_b")
    bad = w.Checkpoint(**{**w.CHECKPOINTS["dinov2_vits14_reg4"].__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(w.CHECKPOINTS, "dinov2_vits14_reg4", bad)
    _save({"x": torch.zeros(1)}, weights_home / bad.filename)
    with pytest.raises(w.WeightsError, match="published hash 0000"):
        get_encoder("dinov2-s", weights="pretrained", device="cpu")


def test_download_offline_and_manual(weights_home):
    with pytest.raises(w.WeightsError, match=r"could not download 'sam_vit_b'.*offline"):
        w.download("sam_vit_b")
    assert not (weights_home / "sam_vit_b_01ec64.pth").exists()
    with pytest.raises(w.WeightsError, match="no direct download"):
        w.download("sslsam_vit_b")


def test_download_streams_and_checks_hash(weights_home, monkeypatch):
    payload = b"checkpoint bytes"

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: Response(payload))
    path = w.download("biomedclip")
    assert path.read_bytes() == payload
    bad = w.Checkpoint(**{**w.CHECKPOINTS["biomedclip"].__dict__, "sha256": "f" * 64})
    monkeypatch.setitem(w.CHECKPOINTS, "biomedclip", bad)
    with pytest.raises(w.WeightsError, match="nothing was saved"):
        w.download("biomedclip", force=True)
    assert path.read_bytes() == payload


def _cli(*argv):
    parser = argparse.ArgumentParser()
    weights_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_weights_cli(weights_home, capsys):
    assert _cli("weights", "list") == 0
    out = capsys.readouterr().out
    assert "sam_vit_b" in out and "dinov2_vitl14_reg4" in out and "unverified" in out
    with pytest.raises(BreastlibError, match="offline"):
        _cli("weights", "download", "dinov2_vitl14_reg4")
    with pytest.raises(BreastlibError, match="not found"):
        _cli("weights", "verify", "sam_vit_b")
    _save({"x": torch.zeros(1)}, weights_home / "sam_vit_b_01ec64.pth")
    assert _cli("weights", "verify", "--record") == 0
    assert "pinned" in capsys.readouterr().out


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server on 127.0.0.1 serving checkpoints in each family's published
    layout under their cache names, named by $BREASTLIB_WEIGHTS_MIRROR; the real
    urlopen back in place (the autouse fixture disables the network)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    for spec in ("sam", "dinov2-s", "medclip"):
        ckpt = w.CHECKPOINTS[ENCODERS[spec].checkpoint]
        _save(checkpoint_from_manifest(w.load_manifest(ckpt.manifest)),
              served / ckpt.filename)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr("urllib.request.urlopen", REAL_URLOPEN)
    monkeypatch.setenv(w.MIRROR_ENV, f"http://127.0.0.1:{server.server_port}/")
    yield served
    server.shutdown()
    server.server_close()


def test_download_by_encoder_name_from_a_mirror_then_load(weights_home, mirror, capsys):
    """`weights download sam dinov2-s medclip` fetches each encoder's checkpoint over HTTP
    (MedCLIP-SAMv2 has no public direct link: the mirror serves it), the files are the
    served bytes, and each encoder then loads them strictly as `pretrained`."""
    assert _cli("weights", "download", "sam", "dinov2-s", "medclip") == 0
    out = capsys.readouterr().out
    for spec in ("sam", "dinov2-s", "medclip"):
        ckpt = w.CHECKPOINTS[ENCODERS[spec].checkpoint]
        assert f"{ckpt.name}" in out
        assert (weights_home / ckpt.filename).read_bytes() == (
            mirror / ckpt.filename).read_bytes()
    for spec in ("sam", "dinov2-s", "medclip"):
        manifest = w.load_manifest(w.CHECKPOINTS[ENCODERS[spec].checkpoint].manifest)
        state = w.read_state_dict(w.locate(ENCODERS[spec].checkpoint))
        mapped, unexpected = _map(spec, state)
        w.load_strict(_meta_network(spec), mapped, unexpected, source=spec)
        assert set(state) == set(manifest["parameters"])


def test_download_all_goes_on_past_what_is_missing_and_says_where(weights_home, mirror,
                                                                  capsys):
    """`all` downloads what the mirror serves and lists every checkpoint it could not get,
    with the path it belongs at; the command fails so that a script notices."""
    total = len(w.CHECKPOINTS)
    with pytest.raises(BreastlibError, match=rf"of {total} checkpoint\(s\) not in the") as err:
        _cli("weights", "download", "all")
    assert str(weights_home / w.CHECKPOINTS["sslsam_vit_b"].filename) in str(err.value)
    assert (weights_home / w.CHECKPOINTS["sam_vit_b"].filename).is_file()
    out = capsys.readouterr().out
    assert "sam_vit_b" in out and "FAILED" in out


def test_download_names_are_checked_and_resolved():
    from breastlib.encoders import checkpoint_names

    assert checkpoint_names(["sam", "sam_vit_b", "dinov2"]) == ["sam_vit_b",
                                                                "dinov2_vitl14_reg4"]
    assert checkpoint_names(["all"]) == list(w.CHECKPOINTS)
    with pytest.raises(BreastlibError, match="give an encoder"):
        checkpoint_names(["mind"])
    without_mirror = w.download_url("medclip_samv2")
    assert without_mirror is None


def test_a_folder_mirror_serves_hand_fetched_checkpoints(weights_home, tmp_path, monkeypatch):
    ckpt = w.CHECKPOINTS["sslsam_vit_b"]
    folder = tmp_path / "site weights"
    _save(checkpoint_from_manifest(w.load_manifest(ckpt.manifest)), folder / ckpt.filename)
    monkeypatch.setattr("urllib.request.urlopen", REAL_URLOPEN)
    monkeypatch.setenv(w.MIRROR_ENV, folder.as_uri())
    assert _cli("weights", "download", "sslsam") == 0
    assert (weights_home / ckpt.filename).read_bytes() == (folder / ckpt.filename).read_bytes()


@pytest.mark.slow  # a phantom pair and two encoder runs: about 2 minutes on 2 cores
def test_pretrained_study_downloads_verifies_and_adds_pretrained_rows(
        weights_home, mirror, tmp_path, monkeypatch, capsys):
    """The pretrained study command up to the network: the checkpoint comes from the
    127.0.0.1 mirror, is verified, and the book's study (here one pair, one encoder)
    gains pretrained rows beside the random ones it keeps."""
    from breastlib.booktools import data as bookdata
    from breastlib.booktools.pretrained import run_pretrained_study

    tiny = bookdata.BookBuild("small", "small", "fast", {"longitudinal": 1}, (0,))
    monkeypatch.setattr(bookdata, "BUILDS", {"small": tiny})
    monkeypatch.setattr(bookdata, "BOOK_METHODS", ("identity", "medclip"))
    (tmp_path / "book").mkdir()
    assert run_pretrained_study(tmp_path, build="small", book=False,
                                encoders=("medclip",)) == 0
    assert "medclip_samv2" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "book/data/small/longitudinal/results.csv")
    cells = sorted(zip(table["method"], table["weights"].fillna(""), table["status"], strict=True))
    assert cells == [("identity", "", "ok"), ("medclip", "pretrained", "ok"),
                     ("medclip", "random", "ok")], table["error"].tolist()


def test_download_and_verify_reports_what_is_ready(weights_home, mirror, capsys):
    """The pretrained study's first step: served checkpoints are downloaded and verified,
    one the mirror lacks is reported with where it belongs, and the study goes on."""
    from breastlib.booktools.pretrained import download_and_verify

    assert download_and_verify(("medclip", "sslsam")) == ["medclip"]
    captured = capsys.readouterr()
    assert "medclip_samv2" in captured.out
    assert str(weights_home / w.CHECKPOINTS["sslsam_vit_b"].filename) in captured.err
