"""Weights by name: open_clip pretrained tags and the authors' released checkpoints.

Two kinds of names resolve to local files here:

* **CLIP weights by tag** (``--pretrained openai``, ``laion2b_s34b_b88k``, ...): any pretrained tag open_clip
  registers for the architecture (``open_clip.list_pretrained_tags_by_model``). The file comes from the
  Hugging Face hub cache (``HF_HUB_CACHE``, ``HF_HOME``), is downloaded through ``huggingface_hub`` when the
  network allows, and is never fetched when ``HF_HUB_OFFLINE=1``; tags open_clip hosts only at a URL use
  open_clip's own download helper (which checks the hash in the URL) and its cache.
* **The authors' released checkpoints** by registry name (``t2l-zero-shot-k400``, ``ila-k400-b16-8f``, ...):
  the registry is data, ``core/configs/released_weights.yaml`` (method, protocol, backbone, frames, the
  paper's figure, where it is hosted, size and sha256 where known). A name resolves to the local cache
  ``$CHRONOCLIP_CACHE/weights/<method>/<file>`` (default ``~/.cache/chronoclip``), is fetched through
  ``huggingface_hub`` where it is hosted on the hub, and otherwise the error says exactly where to download
  it and where to put it. Every resolution verifies the sha256 when the registry has one.

:func:`load_video_model` is the one loader behind ``core.load_official``, ``core.predict`` and
``evaluation``: a registry name, an authors' file, a ``core.train`` run directory or its ``model.pt``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ClipWeights",
    "ReleasedWeights",
    "WeightsNotFoundError",
    "ChecksumError",
    "clip_weights_tags",
    "describe_source",
    "hub_cache_dir",
    "hub_file",
    "hub_offline",
    "is_weights_name",
    "load_video_model",
    "method_catalog",
    "method_papers",
    "released_weights",
    "resolve_clip_weights",
    "resolve_released",
    "sha256_of",
    "weights_cache_dir",
]

REGISTRY_RESOURCE = "released_weights.yaml"  # in the core.configs package
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".tar")
REGISTRY_FIELDS = {"method", "protocol", "trained_on", "backbone", "frames", "paper", "hosted", "url", "hub_repo",
                   "hub_file", "file", "size", "sha256", "options", "notes"}


class WeightsNotFoundError(FileNotFoundError):
    """Named weights that are not on this machine and cannot be fetched (the message says how to get them)."""


class ChecksumError(ValueError):
    """A file whose sha256 differs from the registry's."""


# -- Hugging Face hub -----------------------------------------------------------------------------------
def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` set to a true value (read at call time, not at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_cache_dir() -> Path:
    """The hub cache: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else huggingface_hub's default (read at call time)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def hub_file(repo_id: str, filename: str, *, revision: str | None = None) -> Path:
    """A file of a hub model repository from the cache, downloaded when allowed (never when offline).

    Raises:
        WeightsNotFoundError: not cached and offline, or the download failed (the message says why).
    """
    from huggingface_hub import hf_hub_download

    cache = hub_cache_dir()
    offline = hub_offline()
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=str(cache),
                                    local_files_only=offline))
    except Exception as error:  # EntryNotFound, LocalEntryNotFound, connection errors, ...
        why = "HF_HUB_OFFLINE is set and it is not in the cache" if offline else \
            f"download failed: {str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__}"
        raise WeightsNotFoundError(
            f"{repo_id}/{filename} from the Hugging Face hub: {why}. Cache: {cache} (HF_HUB_CACHE). Fetch it on a "
            f"machine with network (`huggingface-cli download {repo_id} {filename}`) and copy the cache over, or "
            f"pass the local file's path instead") from None


# -- CLIP weights by open_clip tag ---------------------------------------------------------------------
@dataclass(frozen=True)
class ClipWeights:
    """A resolved CLIP weights file; ``quick_gelu`` is what open_clip's pretrained config says (None: a file)."""

    path: Path
    quick_gelu: bool | None = None
    source: str = "file"


def looks_like_path(value: str | os.PathLike) -> bool:
    """A path (exists, has a separator or a weights suffix) rather than a tag or registry name."""
    text = os.fspath(value)
    return Path(os.path.expanduser(text)).exists() or os.sep in text or text.lower().endswith(WEIGHT_SUFFIXES)


def clip_weights_tags(model: str) -> list[str]:
    """open_clip's pretrained tags for architecture ``model`` (empty for presets and unknown names)."""
    import open_clip

    return list(open_clip.list_pretrained_tags_by_model(model))


def _hub_candidates(hf_hub: str) -> tuple[str, list[str]]:
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    # open_clip's convention: "org/repo/file.bin", or "org/repo/" for its default file name
    repo, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    names = [filename]
    if filename == HF_WEIGHTS_NAME:
        names.insert(0, HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith(".bin"):
        names.insert(0, filename[: -len(".bin")] + ".safetensors")
    return repo, names


def resolve_clip_weights(model: str | None, pretrained: str | os.PathLike) -> ClipWeights:
    """A local file for ``pretrained``: a path as given, or an open_clip tag of architecture ``model``.

    Raises:
        ValueError: a tag without an architecture, or a name that is neither a file nor a tag of ``model``.
        WeightsNotFoundError: a known tag whose file is not cached and cannot be fetched.
    """
    text = os.path.expandvars(os.path.expanduser(os.fspath(pretrained)))
    if looks_like_path(text):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"CLIP weights {text!r} not found (a file path, or an open_clip pretrained tag "
                                    f"such as 'openai' with --model ViT-B-16)")
        return ClipWeights(path)
    if model is None:
        raise ValueError(f"--pretrained {text!r} is an open_clip tag: name the architecture too "
                         f"(--model ViT-B-16 / clip.model), or pass a weights file")
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, text)
    if not cfg:
        tags = clip_weights_tags(model)
        raise ValueError(f"{text!r} is neither a file nor an open_clip pretrained tag of {model!r}; its tags: "
                         f"{', '.join(tags) if tags else 'none (a chronoclip preset or unknown architecture)'}")
    quick_gelu = bool(cfg.get("quick_gelu", False))
    source = f"open_clip {model}:{text}"
    if cfg.get("file"):
        return ClipWeights(Path(cfg["file"]), quick_gelu, source)
    errors: list[str] = []
    if cfg.get("hf_hub"):
        repo, names = _hub_candidates(cfg["hf_hub"])
        for name in names:
            try:
                return ClipWeights(hub_file(repo, name), quick_gelu, source)
            except WeightsNotFoundError as error:
                errors.append(str(error))
    url = cfg.get("url")
    if url:
        cached = Path.home() / ".cache" / "clip" / os.path.basename(url)  # open_clip's URL cache
        if cached.is_file():
            return ClipWeights(cached, quick_gelu, source)
        if not hub_offline():
            from open_clip.pretrained import download_pretrained_from_url

            try:
                return ClipWeights(Path(download_pretrained_from_url(url)), quick_gelu, source)
            except Exception as error:
                errors.append(f"{url}: {error}")
        errors.append(f"or download {url} to {cached}")
    raise WeightsNotFoundError(f"CLIP weights {model}:{text} are not on this machine.\n  " + "\n  ".join(errors))


# -- the authors' released checkpoints -----------------------------------------------------------------
@dataclass(frozen=True)
class ReleasedWeights:
    """One released checkpoint of the registry (see ``core/configs/released_weights.yaml``)."""

    name: str
    method: str
    protocol: str
    backbone: str
    frames: int | None
    paper: str
    hosted: str
    url: str | None = None
    trained_on: str | None = None
    hub_repo: str | None = None
    hub_file: str | None = None
    file: str | None = None
    size: int | None = None
    sha256: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None

    @property
    def cache_path(self) -> Path | None:
        """Where the file is expected locally (None for a folder entry that names no single file)."""
        name = self.file or self.hub_file
        return weights_cache_dir() / self.method / name if name else None


def weights_cache_dir() -> Path:
    """``$CHRONOCLIP_CACHE/weights`` (default ``~/.cache/chronoclip/weights``)."""
    root = os.environ.get("CHRONOCLIP_CACHE") or Path.home() / ".cache" / "chronoclip"
    return Path(root) / "weights"


def _registry_file() -> dict[str, Any]:
    text = (resources.files("core.configs") / REGISTRY_RESOURCE).read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def method_papers() -> dict[str, str]:
    """Method -> its paper, venue and official code (the registry's ``papers`` section)."""
    return dict(_registry_file().get("papers") or {})


def released_weights() -> dict[str, ReleasedWeights]:
    """The registry: name -> entry, in file order."""
    out: dict[str, ReleasedWeights] = {}
    for name, entry in (_registry_file().get("weights") or {}).items():
        unknown = set(entry) - REGISTRY_FIELDS
        if unknown:
            raise ValueError(f"{REGISTRY_RESOURCE}: entry {name!r} has unknown fields {sorted(unknown)}")
        out[name] = ReleasedWeights(name=name, **{k: v for k, v in entry.items()})
    return out


def is_weights_name(value: str | os.PathLike) -> bool:
    """``value`` names a registry entry (and is not a path on disk)."""
    text = os.fspath(value)
    return not Path(text).exists() and text in released_weights()


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify(entry: ReleasedWeights, path: Path) -> Path:
    if entry.sha256:
        got = sha256_of(path)
        if got != entry.sha256.lower():
            raise ChecksumError(f"{path} is not the released {entry.name}: sha256 {got}, registry "
                                f"{entry.sha256} (a partial download or another file; delete it and fetch it again)")
    return path


def resolve_released(name: str) -> Path:
    """The local file of registry entry ``name``: cache, else the hub, else instructions.

    Raises:
        KeyError: no such entry (the message lists them).
        WeightsNotFoundError: not cached and not fetchable; the message gives the URL and the target path.
        ChecksumError: the file's sha256 differs from the registry's.
    """
    registry = released_weights()
    if name not in registry:
        raise KeyError(f"no released checkpoint {name!r}; known: {', '.join(registry)} "
                       f"(python -m core.train --list-weights)")
    entry = registry[name]
    target = entry.cache_path
    if target is not None and target.is_file():
        return _verify(entry, target)
    if entry.hub_repo and entry.hub_file:
        return _verify(entry, hub_file(entry.hub_repo, entry.hub_file))
    where = entry.url or (f"https://huggingface.co/{entry.hub_repo}" if entry.hub_repo else "the authors' page")
    if target is None:
        raise WeightsNotFoundError(
            f"{name} is a folder of checkpoints ({entry.hosted}): download the file you want from {where} and pass "
            f"its path (core.load_official({entry.method!r}, PATH))")
    raise WeightsNotFoundError(
        f"{name} ({entry.method}, {entry.protocol}) is not on this machine and is hosted on {entry.hosted}, which "
        f"chronoclip does not download. Download it from\n  {where}\nand save it as\n  {target}\n"
        f"(or pass the downloaded file's path instead of the name)")


# -- one loader for every source -----------------------------------------------------------------------
def _is_run_model(path: Path) -> bool:
    from core.runs import MODEL_FILE

    if path.is_dir():
        return (path / MODEL_FILE).is_file() or (path / "config.yaml").is_file()
    if path.suffix not in (".pt", ".pth"):
        return False
    if path.name == MODEL_FILE and (path.parent / "config.yaml").is_file():
        return True
    import zipfile

    # a renamed/copied model.pt: torch's zip archive holds the pickled payload; look for the format tag
    if not zipfile.is_zipfile(path):
        return False
    from core.runs import MODEL_FORMAT

    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        return bool(pickles) and MODEL_FORMAT.encode() in archive.read(pickles[0])


def describe_source(source: str | os.PathLike) -> tuple[str, str | None]:
    """``(kind, method)`` of a model source: kind is ``run``, ``registry`` or ``file``; method when it says.

    Raises:
        FileNotFoundError: neither an existing path nor a registry name.
    """
    text = os.fspath(source)
    path = Path(os.path.expanduser(text))
    if path.exists():
        if _is_run_model(path):
            from core.runs import _model_file
            from core.serialization import load_weights

            payload = load_weights(_model_file(path))  # weights only: a tampered model.pt is refused by name
            return "run", payload.get("method")
        return "file", None
    registry = released_weights()
    if text in registry:
        return "registry", registry[text].method
    raise FileNotFoundError(f"{text!r} is neither a file, a run directory, nor a released checkpoint name "
                            f"(python -m core.train --list-weights lists them)")


def load_video_model(method: str | None, source: str | os.PathLike, **options: Any):
    """An eval-ready ``VideoModel`` from any source: a registry name, a run (directory or ``model.pt``), or an
    authors' file converted by ``method``'s ``load_official``.

    ``options`` go to the converter; a ``clip=`` option may be an open_clip tag (``openai``) of the entry's
    backbone. Returns ``(model, info)``: ``info`` holds ``kind``, ``method``, ``path`` and for runs the run's
    metadata (``class_names``, ``num_frames``, ...).

    Raises:
        ValueError: ``method`` contradicts what the source says, or is missing where the file cannot say.
    """
    from core.method import load_method

    kind, said = describe_source(source)
    if said is not None and method is not None and said != method:
        raise ValueError(f"{os.fspath(source)} holds a {said!r} model, not {method!r}; pass --method {said} "
                         f"(or omit it)")
    method = method or said
    if kind == "run":
        from core.runs import load_run_model

        if options:
            raise ValueError(f"a run's model is rebuilt from its own options; do not pass {sorted(options)}")
        model, info = load_run_model(source)
        return model, {"kind": kind, "path": Path(source), **info}
    if method is None:
        raise ValueError(f"cannot tell which method wrote {os.fspath(source)!r}: pass --method (the converter "
                         f"that reads the authors' file), e.g. --method tcclip")
    backbone = "ViT-B-16"
    if kind == "registry":
        entry = released_weights()[os.fspath(source)]
        backbone = entry.backbone
        options = {**entry.options, **options}
        path = resolve_released(entry.name)
    else:
        path = Path(os.path.expanduser(os.fspath(source)))
    clip = options.get("clip")
    if isinstance(clip, str) and not looks_like_path(clip):
        options["clip"] = str(resolve_clip_weights(backbone, clip).path)
    model = load_method(method).load_official(path, **options)
    return model, {"kind": kind, "method": method, "path": path}


def method_catalog(methods: dict[str, str] | None = None, *, weights: bool = True) -> str:
    """Installed methods with their distribution, paper, shipped recipes and (``weights``) released checkpoints.

    ``methods``: name -> distribution (default :func:`core.list_methods`). Released files are listed with their
    protocol, backbone, frames, the paper's figure, where they are hosted and whether they are cached here.
    """
    from core.method import list_methods, load_method

    methods = list_methods() if methods is None else methods
    papers = method_papers()
    registry = released_weights()
    lines: list[str] = []
    for name, dist in methods.items():
        lines.append(f"{name}  ({dist})")
        if name in papers:
            lines.append(f"  paper:   {papers[name]}")
        try:
            recipes = sorted(load_method(name).configs())
        except Exception as error:  # a broken plugin should not hide the others
            recipes = [f"<cannot load: {error}>"]
        lines.append(f"  recipes: {', '.join(recipes) or 'none'}  (--config NAME)")
        if not weights:
            continue
        entries = [e for e in registry.values() if e.method == name]
        if entries:
            lines.append("  released weights (core.load_official / --checkpoint / --official NAME):")
        for entry in entries:
            cached = entry.cache_path is not None and entry.cache_path.is_file()
            frames = f"{entry.frames}f" if entry.frames else "?f"
            lines.append(f"    {entry.name:<30} {entry.protocol:<16} {entry.backbone:<13} {frames:<4} "
                         f"{entry.paper}")
            where = entry.url or entry.hub_repo
            check = f"sha256 {entry.sha256[:12]}…" if entry.sha256 else "sha256 unknown"
            state = f"cached at {entry.cache_path}" if cached else (
                f"save as {entry.cache_path}" if entry.cache_path else "a folder: pass the downloaded file's path")
            lines.append(f"    {'':<30} {entry.hosted}: {where}; {check}; {state}")
    return "\n".join(lines)
