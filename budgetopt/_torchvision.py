"""Make ``import torchvision`` (and so ``import timm``) work next to a CPU-only torch.

PyPI's torchvision wheels are CUDA builds. Next to a CPU-only torch their compiled
extension does not load, and ``torchvision/_meta_registrations.py`` then fails at
import with ``RuntimeError: operator torchvision::nms does not exist``: it registers
fake kernels for ``torchvision::nms`` and ``torchvision::qnms`` unconditionally.

:func:`ensure_torchvision` handles exactly that failure: it defines the two operator
schemas with ``torch.library``, gives ``nms`` a plain-torch CPU kernel, and imports
again. When torchvision imports normally (a matching build, e.g. on a GPU machine),
nothing is touched. What then works on CPU: models, transforms on tensors, datasets
(including CIFAR-10 and FakeData), and the operator ``torch.ops.torchvision.nms``.
What does not: the compiled image decoders (``torchvision.io.decode_*``) and the
compiled detection ops behind ``torchvision.ops`` (``nms``, ``roi_align``,
``deform_conv2d``, ...), whose Python wrappers check for the compiled extension.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import sys

import torch

_NMS_ERROR = "operator torchvision::nms does not exist"
_library: torch.library.Library | None = None  # kept alive: dropping it removes the ops


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression in plain torch (boxes as x1, y1, x2, y2)."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    iou = inter / (areas[:, None] + areas[None, :] - inter)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(boxes)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def _define_missing_ops() -> None:
    global _library
    if _library is not None:
        return
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms, "CPU")
    _library = lib


def _extension_fails_to_load() -> bool:
    """True when torchvision ships a compiled extension that torch cannot load (the
    CUDA-build-next-to-CPU-torch case), found without importing torchvision."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    libraries = [
        path
        for folder in spec.submodule_search_locations
        for path in glob.glob(os.path.join(folder, "_C.*"))
        if path.endswith((".so", ".pyd", ".dylib"))
    ]
    if not libraries:
        return False
    try:
        torch.ops.load_library(libraries[0])
    except (OSError, RuntimeError):
        return True
    return False


def repair_torchvision_ops() -> None:
    """Define the missing operators if torchvision's extension cannot load.

    Call it before ``import torchvision`` / ``import timm`` (or Lightning, which imports
    torchvision through torchmetrics) next to a CPU-only torch: it does not import
    torchvision itself (about two seconds), and changes nothing where torchvision's
    extension loads. The built-in studies that need it, the Lightning integration and
    :func:`budgetopt.load_study_script` for a script given by path call it;
    ``import budgetopt`` does not.
    """
    if "torchvision" not in sys.modules and _extension_fails_to_load():
        _define_missing_ops()


def ensure_torchvision():
    """Import torchvision, repairing the CPU-torch / CUDA-torchvision mismatch if needed.

    Returns the torchvision module, or None when torchvision is not installed.
    """
    if importlib.util.find_spec("torchvision") is None:
        return None
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as error:
        if _NMS_ERROR not in str(error):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _define_missing_ops()
    return importlib.import_module("torchvision")
