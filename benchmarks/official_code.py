"""The authors' own code, built from our model's weights, for side-by-side timing (``benchmarks/forward.py``).

``OFFICIAL[method](repo, ours, frames, texts, deps=None)`` imports the authors' model-building code from a
checkout of their repository (nothing of theirs is copied into this project), builds their model with
``ours``'s weights through the method package's converter (``to_official_state_dict``), puts it in its clean
eval forward and returns ``video -> logits`` (fp32) for ``texts``. ``video`` is ours: (B, T, 3, H, W),
normalised. Text features that the authors' evaluation computes once per class list (T2L, ILA's text
encoder, STAN) are computed once here too; TC-CLIP's video-conditioned text runs on every call, as in ours.

===========  =============================================  ===================================================
method       checkout                                       built through
===========  =============================================  ===================================================
``ila``      github.com/Francis-Rings/ILA (branch master)   ``models.xclip.build_model``
``t2l``      github.com/Shahzadnit/T2L                      ``clip.model.build_model`` + ``test.validate``'s
                                                            logits (100 x cosine, frame mean)
``tcclip``   github.com/naver-ai/tc-clip                    ``trainers.build_trainer.returnCLIP`` with
                                                            ``configs/trainer/tc_clip.yaml``, ``opt_level O0``
``stan``     github.com/farewellthree/STAN                  ``CLIPSimilarity_split`` (``VITCLIPPretrained_STAN``
                                                            + ``CLIPTextPretrained``), logits ``sim / tau``
===========  =============================================  ===================================================

The repositories import packages that their eval forward never touches (image transforms, cv2, mmcv,
mmengine, omegaconf, ...). While their code is imported, each such package that is not installed is stood in
for by an inert stub module (never by a copy of its code); mmcv and mmengine are always stubbed. Every module
imported from a checkout is dropped from ``sys.modules`` afterwards (the objects stay alive through the model),
so the checkouts, three of which have a top-level ``clip`` package, never see each other.

STAN's code runs on Hugging Face ``transformers`` (its requirements pin 4.35.0), which needs a
``huggingface_hub`` older than 1.0. Where the environment has neither (or a newer hub, as open_clip's), install
the pinned pure-Python packages into a folder of their own and pass it as ``deps``; it is put first on the
import path only while the authors' model is built::

    uv pip install --target DIR --no-deps transformers==4.35.0 huggingface_hub==0.17.3 requests urllib3 idna \\
        certifi charset_normalizer
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import sys
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["CHECKOUTS", "OFFICIAL", "OfficialCodeError", "OfficialForward", "build_official", "check_checkout"]

OfficialForward = Callable[[Tensor], Tensor]

# method -> (repository, a file only its checkout has)
CHECKOUTS: dict[str, tuple[str, str]] = {
    "ila": ("github.com/Francis-Rings/ILA (branch master)", "models/xclip.py"),
    "t2l": ("github.com/Shahzadnit/T2L", "train_fullysupervised.py"),
    "tcclip": ("github.com/naver-ai/tc-clip", "trainers/tc_clip.py"),
    "stan": ("github.com/farewellthree/STAN", "mmaction/models/backbones/clip_stan_hf.py"),
}
STAN_DEPS_INSTALL = ("uv pip install --target DIR --no-deps transformers==4.35.0 huggingface_hub==0.17.3 requests "
                     "urllib3 idna certifi charset_normalizer")


class OfficialCodeError(RuntimeError):
    """The authors' code cannot be found, imported or built from our weights; the message says why."""


def check_checkout(method: str, repo: Path) -> Path:
    """``repo`` resolved, or an error naming the checkout expected for ``method``."""
    url, marker = CHECKOUTS[method]
    if not (repo / marker).is_file():
        raise OfficialCodeError(f"--official-repo {method}={repo}: no {marker} there; point it at a checkout of {url}")
    return repo.resolve()


# -- importing the authors' code -----------------------------------------------------------------------------
def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__path__ = []  # a package, so that its stubbed submodules import
    return module


def _missing(*names: str) -> set[str]:
    return {name for name in names if importlib.util.find_spec(name) is None}


def _image_stubs() -> dict[str, types.ModuleType]:
    """Stand-ins, for each one not installed, for what the authors' ``clip`` packages import for image
    preprocessing that this path never calls (torchvision transforms, PIL), and T2L's cv2 (an attention-map
    plot). No ``InterpolationMode``: TC-CLIP's clip.py then falls back to PIL's constant, as on old torchvision."""
    stubs: dict[str, types.ModuleType] = {}
    if _missing("torchvision"):
        transforms = _module("torchvision.transforms", **dict.fromkeys(
            ("Compose", "Resize", "CenterCrop", "ToTensor", "Normalize"), object))
        stubs |= {"torchvision": _module("torchvision", transforms=transforms), "torchvision.transforms": transforms}
    if _missing("PIL"):
        image = _module("PIL.Image", BICUBIC=3)
        stubs |= {"PIL": _module("PIL", Image=image), "PIL.Image": image}
    if _missing("cv2"):
        stubs["cv2"] = _module("cv2")
    return stubs


def _top_level_names(folder: Path) -> set[str]:
    """Importable top-level names in ``folder`` (packages, namespace packages included, and modules)."""
    return {p.name if p.is_dir() else p.stem for p in folder.iterdir()
            if (p.is_dir() and p.name.isidentifier()) or p.suffix == ".py"}


def _under(module: types.ModuleType, roots: Sequence[Path]) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and any(Path(file).resolve().is_relative_to(root) for root in roots)


@contextlib.contextmanager
def _authors_code(repo: Path, stubs: Mapping[str, types.ModuleType], deps: Path | None = None,
                  cwd: bool = False) -> Iterator[None]:
    """Import from ``repo`` (and ``deps`` first) with ``stubs`` in ``sys.modules``; undo all of it afterwards.

    Modules of the same top-level names already imported (an installed ``clip``, open_clip's
    ``huggingface_hub``) are hidden meanwhile and restored afterwards; the modules imported from ``repo`` or
    ``deps`` and the stubs are removed. ``cwd``: run inside ``repo`` (code that opens files relative to it).
    """
    roots = [repo, *([deps.resolve()] if deps is not None else [])]
    names = set().union(*(_top_level_names(root) for root in roots), {name.split(".")[0] for name in stubs})
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in names}
    sys.modules.update(stubs)
    sys.path[:0] = [str(root) for root in roots]
    try:
        with (contextlib.chdir(repo) if cwd else contextlib.nullcontext(), contextlib.redirect_stdout(io.StringIO()),
              warnings.catch_warnings()):
            warnings.simplefilter("ignore")  # their imports' deprecation notices
            yield
    except (ImportError, SyntaxError) as error:
        raise OfficialCodeError(f"importing the authors' code from {repo} failed: {error!r}") from error
    finally:
        for root in roots:
            sys.path.remove(str(root))
        for name in list(sys.modules):
            if name.split(".")[0] in names or _under(sys.modules[name], roots):
                del sys.modules[name]
        sys.modules.update(hidden)


def _load_file(name: str, path: Path) -> types.ModuleType:
    """Execute one source file of a checkout as module ``name`` (without its package's ``__init__``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_weights(model: nn.Module, state: Mapping[str, Tensor], method: str,
                  may_miss: Callable[[str], bool] = lambda key: False) -> None:
    """Load ``state`` into the authors' ``model``; every tensor of it must be accounted for."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not may_miss(k)]
    if missing or unexpected:
        raise OfficialCodeError(f"the authors' {method} model and ours differ in weights: theirs only "
                                f"{sorted(missing)[:6]}, ours only {sorted(unexpected)[:6]}")


def _fp32_state(ours: nn.Module, to_official: Callable[[Mapping[str, Tensor]], dict[str, Tensor]]) -> dict[str, Tensor]:
    return {k: v.detach().clone().float() for k, v in to_official(ours.state_dict()).items()}


class _Attributes(dict):
    """A config read by attribute and by ``get`` (what the authors' DotMap / OmegaConf configs offer)."""

    def __getattr__(self, name: str) -> object:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# -- ILA ------------------------------------------------------------------------------------------------------
def official_ila(repo: Path, ours: nn.Module, frames: int, texts: Sequence[str],
                 deps: Path | None = None) -> OfficialForward:
    """The authors' ILA (K400 branch) through ``models.xclip.build_model`` with ``ours``'s weights."""
    from chronoclip_ila.convert import to_official_state_dict

    repo = check_checkout("ila", repo)
    stubs = _image_stubs()
    with _authors_code(repo, stubs, deps):
        from clip import tokenize
        from models.xclip import build_model

        state = _fp32_state(ours, to_official_state_dict)
        model = build_model(dict(state), T=frames, droppath=0.0, logger=logging.getLogger("official-ila"),
                            mit_layers=len(ours.mit.resblocks), use_cache=True,
                            prompts_layers=len(ours.prompts_generator.decoder))
        tokens = tokenize(list(texts))
    model = model.float()
    _load_weights(model, state, "ila")
    for module in model.modules():
        if hasattr(module, "is_training"):
            module.is_training = False  # the clean eval forward: one mask per point, no jitter
    model.eval()  # (not chained: some of their modules override train() without returning self)
    return lambda video: model(video, tokens)[0]


# -- T2L ------------------------------------------------------------------------------------------------------
def official_t2l(repo: Path, ours: nn.Module, frames: int, texts: Sequence[str],
                 deps: Path | None = None) -> OfficialForward:
    """The authors' T2L ``CLIP`` through ``clip.model.build_model``; logits as ``test.validate`` computes them."""
    from chronoclip_t2l.convert import to_official_state_dict

    repo = check_checkout("t2l", repo)
    stubs = _image_stubs()
    # The released configs: prompt {use, DEEP, INITIATION: random, DROPOUT: 0.1}, no T_Adapter.
    config = _Attributes(prompt=_Attributes(use=ours.temporal_tokens is not None, DEEP=True, INITIATION="random",
                                            DROPOUT=0.1, num_of_token=None), T_Adapter=False)
    state = _fp32_state(ours, lambda _: to_official_state_dict(ours))
    with _authors_code(repo, stubs, deps):
        import clip as official_clip
        from clip.model import build_model

        model = build_model(dict(state), config, T=frames)
        tokens = official_clip.tokenize(list(texts))
    # test.py on a CPU: model.float(), then the checkpoint's weights (build_model had rounded them to fp16)
    model = model.float()
    _load_weights(model, state, "t2l")
    model.eval()  # (not chained: some of their modules override train() without returning self)
    with torch.no_grad():
        text = model.encode_text(tokens)
        text = text / text.norm(dim=-1, keepdim=True)

    def forward(video: Tensor) -> Tensor:
        b, t = video.shape[:2]
        image = model.encode_image(video.flatten(0, 1)).view(b, t, -1).mean(dim=1)
        image = image / image.norm(dim=-1, keepdim=True)
        return 100.0 * image @ text.T
    return forward


# -- TC-CLIP --------------------------------------------------------------------------------------------------
def official_tcclip(repo: Path, ours: nn.Module, frames: int, texts: Sequence[str],
                    deps: Path | None = None) -> OfficialForward:
    """The authors' ``TCCLIP`` through ``returnCLIP`` (their CLIP loader reading our CLIP from a temp file)."""
    import yaml
    from chronoclip_tcclip.convert import to_official_state_dict

    repo = check_checkout("tcclip", repo)
    # utils/print_utils.py imports omegaconf for its config printing
    stubs = _image_stubs() | {name: _module(name, OmegaConf=object) for name in _missing("omegaconf")}
    config = _Attributes(yaml.safe_load((repo / "configs/trainer/tc_clip.yaml").read_text()))
    options = asdict(ours.options)
    config.update({k: v for k, v in options.items() if k in config and k != "context_length" and v is not None})
    config.update(num_frames=frames, opt_level="O0")  # O0: fp32 (their O1 keeps fp16 inputs for GPU autocast)
    state = _fp32_state(ours, to_official_state_dict)
    with tempfile.TemporaryDirectory() as folder, _authors_code(repo, stubs, deps):
        from clip import clip as clip_loader
        from trainers.build_trainer import returnCLIP

        # their loader reads OpenAI's CLIP file: ours, in OpenAI's layout and fp16 as OpenAI ships it
        clip_file = Path(folder) / "clip.pt"
        torch.save({k.removeprefix("clip."): v.detach().half() for k, v in ours.state_dict().items()
                    if k.startswith("clip.")}, clip_file)
        clip_loader._download = lambda url, root=None: str(clip_file)
        model = returnCLIP(config, logger=logging.getLogger("official-tcclip"), class_names=list(texts))
    # as utils/tools.py::load_checkpoint: the class-list buffers stay those built for this list
    _load_weights(model, state, "tcclip", may_miss=lambda k: k.startswith("prompt_learner.token_"))
    model.eval()  # (not chained: some of their modules override train() without returning self)
    return lambda video: model(video)["logits"]


# -- STAN -----------------------------------------------------------------------------------------------------
class _Registry:
    """mmengine's registry, as far as the model's construction uses it."""

    def __init__(self) -> None:
        self.classes: dict[str, type] = {}

    def register_module(self, name: str | None = None, force: bool = False, module: type | None = None):
        def add(cls: type) -> type:
            self.classes[name or cls.__name__] = cls
            return cls
        return add(module) if module is not None else add

    def build(self, config: Mapping) -> nn.Module:
        config = dict(config)
        return self.classes[config.pop("type")](**config)


class _DropPath(nn.Module):
    """mmcv's DropPath where only the eval forward runs: the identity."""

    def __init__(self, drop_prob: float = 0.1) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.drop_prob > 0:
            raise RuntimeError("stand-in for mmcv's DropPath: eval only")
        return x


class _BaseModel(nn.Module):
    """mmengine's BaseModel without its data preprocessor (the benchmark feeds normalised tensors)."""

    def __init__(self, data_preprocessor: object = None, init_cfg: object = None) -> None:
        super().__init__()


def _constant_init(module: nn.Module, val: float, bias: float = 0) -> None:
    nn.init.constant_(module.weight, val)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)


def _training_only(*args: object, **kwargs: object) -> None:
    raise RuntimeError("stand-in for a training-only mmengine function")


def _stan_stubs() -> dict[str, types.ModuleType]:
    models, transforms = _Registry(), _Registry()
    stubs = [
        _module("mmaction"), _module("mmaction.registry", MODELS=models, TRANSFORMS=transforms),
        _module("mmaction.utils", ForwardResults=object, OptSampleList=object),
        _module("mmaction.utils.mask_generator", TubeMaskingGenerator=object, RandomMaskingGenerator=object),
        _module("mmaction.models"), _module("mmaction.models.losses"), _module("mmaction.models.backbones"),
        _module("mmaction.models.recognizers"), _module("mmaction.datasets"), _module("mmaction.datasets.transforms"),
        _module("mmcv"), _module("mmcv.cnn"), _module("mmcv.cnn.bricks", DropPath=_DropPath),
        _module("mmcv.transforms", BaseTransform=object),
        _module("mmengine"), _module("mmengine.dist", all_gather=_training_only, get_rank=_training_only),
        _module("mmengine.model", BaseModel=_BaseModel, constant_init=_constant_init),
        _module("mmengine.structures", InstanceData=object, BaseDataElement=object),
        _module("mmengine.runner", autocast=contextlib.nullcontext),
    ]
    if _missing("pkg_resources"):  # the tokenizer's torch-version check uses pkg_resources.packaging
        import packaging.version
        stubs.append(_module("pkg_resources", packaging=packaging))
    return {module.__name__: module for module in stubs}


def _hf_clip_config(clip: nn.Module) -> dict:
    """A Hugging Face ``CLIPConfig`` (as a dict) of our open_clip CLIP's geometry."""
    from open_clip.transformer import QuickGELU

    def tower(blocks: nn.Module) -> dict:
        block = blocks.resblocks[0]
        return {"hidden_size": block.attn.embed_dim, "intermediate_size": block.mlp.c_fc.out_features,
                "num_hidden_layers": len(blocks.resblocks), "num_attention_heads": block.attn.num_heads,
                "hidden_act": "quick_gelu" if isinstance(block.mlp.gelu, QuickGELU) else "gelu",
                "layer_norm_eps": 1e-5}
    visual = clip.visual
    embed = visual.proj.shape[1]
    patch = visual.conv1.kernel_size[0]
    # eos_token_id 2: OpenAI's hub config, under which the text tower pools its largest token id
    text = {**tower(clip.transformer), "vocab_size": clip.token_embedding.num_embeddings,
            "max_position_embeddings": clip.positional_embedding.shape[0], "projection_dim": embed,
            "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
    vision = {**tower(visual.transformer), "image_size": patch * visual.grid_size[0], "patch_size": patch,
              "projection_dim": embed}
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": embed,
            "text_config": text, "vision_config": vision}


def official_stan(repo: Path, ours: nn.Module, frames: int, texts: Sequence[str],
                  deps: Path | None = None) -> OfficialForward:
    """The authors' ``CLIPSimilarity_split`` (recognition) with ``VITCLIPPretrained_STAN`` and
    ``CLIPTextPretrained``, built by their registry code from a local Hugging Face CLIP folder."""
    from chronoclip_stan.convert import to_official_state_dict

    repo = check_checkout("stan", repo)
    code = repo / "mmaction"
    state = _fp32_state(ours, to_official_state_dict)
    with tempfile.TemporaryDirectory() as folder, _authors_code(repo, _stan_stubs(), deps, cwd=True):
        try:
            import transformers
            from transformers.models.clip.modeling_clip import CLIPAttention  # noqa: F401
        except ImportError as error:
            raise OfficialCodeError(f"STAN's code needs transformers (pinned 4.35.0) with a huggingface_hub < 1.0: "
                                    f"{error!r}. Install them into a folder with `{STAN_DEPS_INSTALL}` and pass "
                                    f"--official-deps DIR") from error
        if transformers.__version__ != "4.35.0":
            logging.getLogger(__name__).warning("STAN's requirements pin transformers 4.35.0; using %s",
                                                transformers.__version__)
        transformers.logging.set_verbosity_error()  # from_pretrained: the weights come from ours below
        _load_file("mmaction.datasets.transforms.text_transforms", code / "datasets/transforms/text_transforms.py")
        losses = _load_file("mmaction.models.losses.contractive_loss", code / "models/losses/contractive_loss.py")
        sys.modules["mmaction.models.losses"].sim_matrix = losses.sim_matrix
        _load_file("mmaction.models.backbones.clip_stan_hf", code / "models/backbones/clip_stan_hf.py")
        _load_file("mmaction.models.recognizers.clip_similarity", code / "models/recognizers/clip_similarity.py")
        registry = sys.modules["mmaction.registry"].MODELS
        # their encoders read a local CLIP folder: our geometry, no weights (ours are loaded below)
        hf_clip = Path(folder)
        (hf_clip / "config.json").write_text(json.dumps(_hf_clip_config(ours.clip)))
        torch.save({"logit_scale": torch.tensor(0.0)}, hf_clip / "pytorch_model.bin")
        class_file = hf_clip / "classes.txt"
        class_file.write_text("\n".join(texts) + "\n")
        time_module = "conv" if "branch.temporal.0.conv.weight" in ours.state_dict() else "selfattn"
        model = registry.build(dict(
            type="CLIPSimilarity_split", data_preprocessor=None, task="recognition", tau=ours.tau,
            class_path=str(class_file), loss=dict(type="NormSoftmaxLoss"),
            visual_encoder=dict(type="VITCLIPPretrained_STAN", clip_weight=str(hf_clip), depth=len(ours.branch.spatial),
                                time_module=time_module),
            text_encoder=dict(type="CLIPTextPretrained", clip_weight=str(hf_clip))))
    _load_weights(model, state, "stan", may_miss=lambda k: k.endswith("position_ids"))
    model.eval()  # (not chained: some of their modules override train() without returning self)
    sim_matrix = losses.sim_matrix

    def forward(video: Tensor) -> Tensor:
        # (B, 3, T, H, W), their NCTHW layout, so that no frame count is mistaken for the channels
        video_features, text_features = model.extract_feat({"imgs": video.transpose(1, 2), "text": model.text})
        if isinstance(text_features, tuple):  # CLIPTextPretrained gives (token features, pooled features)
            text_features = text_features[1]
        return (1 / model.tau) * sim_matrix(video_features, text_features)
    return forward


OFFICIAL: dict[str, Callable[..., OfficialForward]] = {
    "ila": official_ila, "t2l": official_t2l, "tcclip": official_tcclip, "stan": official_stan,
}


def build_official(method: str, repo: Path, ours: nn.Module, frames: int, texts: Sequence[str],
                   deps: Path | None = None) -> OfficialForward:
    """``OFFICIAL[method]`` with a clear error for a method that has no hook."""
    if method not in OFFICIAL:
        raise OfficialCodeError(f"no hook for the authors' code of {method!r}; there is one for {', '.join(OFFICIAL)}")
    return OFFICIAL[method](Path(repo), ours, frames, texts, deps=deps)
