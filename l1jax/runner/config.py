"""Typed experiment configs: YAML files that extend each other, ``--set`` overrides, and one-line
errors that name the file, the key, the expected and the given value.

A study declares its schema as a dataclass that extends :class:`~l1jax.runner.RunConfig` (the
runner's own sections: seed, optimizer, schedule, train, sweep, parallel, distributed), or
:class:`~l1jax.runner.StudyConfig` (seed, smoke, parallel, distributed) for a study that does
not train through the runner (:mod:`l1jax.runner.schema`)::

    @dataclasses.dataclass
    class MyConfig(RunConfig):
        data: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "toy", "n": 64})
        width: int = MISSING   # required: a file must set it

and :func:`load_config` merges, in order, the schema's defaults, each YAML file of the
``extends:`` chain (base first; the path is relative to the file that names it), the smoke
profile when ``smoke: true``, and the ``--set key=value`` overrides, with OmegaConf checking
every key and type on the way. The result is an instance of the schema (plain dataclasses, dicts
and lists), so study code gets attribute access and type hints.

Configs are data: files and ``--set`` values are read by a YAML loader without anchors and
aliases, files are at most 1 MiB (:mod:`l1jax.runner._yaml`), and OmegaConf interpolation
(``${...}``) is refused, so nothing in a config is evaluated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from l1jax.runner._yaml import MAX_CONFIG_BYTES, parse_yaml, read_yaml, yaml_problem
from l1jax.runner.errors import ConfigError

__all__ = [
    "MISSING",
    "load_config",
    "to_yaml",
    "to_container",
    "flatten",
    "diff",
    "identity",
    "fingerprint",
    "RESUME_NEUTRAL",
    "check_name",
]

EXTENDS_KEY = "extends"


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        # Only the type: a file that is not a config (extends: /etc/passwd) is not echoed.
        raise ConfigError(
            source=str(path),
            key="<top level>",
            expected="a mapping",
            given=f"a {type(data).__name__}",
        )
    _check_data(data, str(path))
    return data


def _check_data(data: Any, source: str, prefix: str = "") -> None:
    """Rejects OmegaConf interpolations (``${...}``) anywhere in user input: configs are data,
    and a resolver could read the environment or files into a run."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if not isinstance(k, (str, int)) or (isinstance(k, str) and "${" in k):
                raise ConfigError(
                    "keys must be plain names",
                    source=source,
                    key=_short(key),
                    expected="a name",
                    given=_given(k),
                )
            _check_data(v, source, key)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _check_data(v, source, f"{prefix}[{i}]")
    elif isinstance(data, str) and "${" in data:
        raise ConfigError(
            "interpolation (${...}) is not supported: configs are data",
            source=source,
            key=prefix or "<top level>",
        )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_MAX_EXTENDS = 16


def _chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The ``extends:`` chain of ``path``, base first."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in seen:
        cycle = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"'extends' cycle: {cycle}", source=str(path))
    data = _read_yaml(path)
    parent = data.pop(EXTENDS_KEY, None)
    if parent is None:
        return [(path, data)]
    if not isinstance(parent, str):
        raise ConfigError(
            source=str(path),
            key=EXTENDS_KEY,
            expected="a path (relative to this file)",
            given=_given(parent),
        )
    if len(seen) >= _MAX_EXTENDS:
        raise ConfigError(f"'extends' chain longer than {_MAX_EXTENDS} files", source=str(path))
    return [*_chain(path.parent / parent, (*seen, resolved)), (path, data)]


def _type_name(hint: Any) -> str:
    if hint is Any or hint is None:
        return "any value"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin in (dict, Mapping) or hint is dict:
        return "a mapping"
    if origin in (list, tuple, Sequence) or hint is list:
        inner = f" of {_type_name(args[0])}" if args and args[0] is not Any else ""
        return f"a list{inner}"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return f"a mapping ({hint.__name__})"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _node(cfg: DictConfig, key: str):
    node: Any = cfg
    for part in key.replace("[", ".").replace("]", "").split("."):
        if part == "" or node is None:
            continue
        index: str | int = part
        if isinstance(node, ListConfig):
            index = int(part)
            if index >= len(node):
                return None
        elif not isinstance(node, DictConfig) or part not in node.keys():
            return None
        node = node._get_node(index)
    return node


def _expected(cfg: DictConfig, key: str) -> str:
    node = _node(cfg, key)
    if node is None:
        parent, _, _ = key.rpartition(".")
        pnode = _node(cfg, parent) if parent else cfg
        if isinstance(pnode, DictConfig):
            keys = ", ".join(str(k) for k in pnode.keys())
            return f"one of the keys of {parent or 'the top level'} ({keys})"
        return "a known key"
    hint = node._metadata.type_hint
    if node._metadata.optional and typing.get_origin(hint) is not typing.Union:
        return f"{_type_name(hint)} or null"
    return _type_name(hint)


def _lookup(data: Any, key: str) -> Any:
    for part in key.replace("[", ".").replace("]", "").split("."):
        if part == "":
            continue
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _given(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _leaves(data: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(data, Mapping) and data:
        for k, v in data.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, data


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _merge(base: DictConfig, data: Mapping[str, Any], source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, data)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        key = e.full_key
        if not key:
            # OmegaConf sometimes cannot say where (a scalar given for a section): find the
            # first leaf that fails on its own.
            for leaf_key, value in _leaves(data):
                try:
                    OmegaConf.merge(base, _nest(leaf_key, value))
                except OmegaConfBaseException:
                    key = leaf_key
                    break
        key = key or "<unknown>"
        if isinstance(e, ConfigKeyError):
            raise ConfigError(
                "unknown key",
                source=source,
                key=key,
                expected=_expected(base, key),
                given=repr(key.rpartition(".")[2]),
            ) from None
        return _raise_type(base, data, source, key)


def _raise_type(base: DictConfig, data: Mapping[str, Any], source: str, key: str):
    raise ConfigError(
        source=source, key=key, expected=_expected(base, key), given=_given(_lookup(data, key))
    ) from None


_KEY_PART = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclasses.dataclass(frozen=True)
class _Override:
    """One ``--set key=value``: the dotted key and the value parsed as YAML."""

    item: str
    key: str
    value: Any

    @property
    def source(self) -> str:
        return f"--set {_short(self.item, 80)}"

    def keys(self) -> list[str]:
        """The dotted keys this override sets (a mapping sets each of its leaves too)."""
        if not isinstance(self.value, Mapping):
            return [self.key]
        return [self.key, *(f"{self.key}.{k}" for k, _ in _leaves(self.value) if k)]


def _parse_override(item: str) -> _Override:
    key, eq, text = item.partition("=")
    source = f"--set {_short(item, 80)}"
    if not eq:
        raise ConfigError(
            source=source, key=_short(key), expected="key=value", given=repr(_short(item))
        )
    key = key.strip()
    if not key or not all(_KEY_PART.match(part) for part in key.split(".")):
        raise ConfigError(
            source=source,
            key=_short(key) or "<empty>",
            expected="a dotted key of names (a.b.c)",
            given=repr(_short(key)),
        )
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"value longer than {MAX_CONFIG_BYTES} bytes", source=source, key=key)
    try:
        value = parse_yaml(text) if text.strip() else None
    except (yaml.YAMLError, RecursionError) as e:
        raise ConfigError(
            f"cannot parse the value ({yaml_problem(e)})", source=source, key=key
        ) from None
    _check_data(value, source, key)
    return _Override(item=item, key=key, value=value)


def _apply(cfg: DictConfig, override: _Override) -> DictConfig:
    """Applies one ``--set``: a mapping replaces the key's mapping, anything else sets it."""
    cfg = _merge(cfg, _nest(override.key, override.value), override.source)  # checks the keys
    if not isinstance(override.value, Mapping):
        return cfg
    node = _node(cfg, override.key)
    new: Any = override.value
    object_type = getattr(getattr(node, "_metadata", None), "object_type", None)
    if isinstance(node, DictConfig) and dataclasses.is_dataclass(object_type):
        # A section of the schema: its defaults, then the given fields.
        new = OmegaConf.merge(OmegaConf.structured(object_type), override.value)
    try:
        OmegaConf.update(cfg, override.key, new, merge=False)
    except OmegaConfBaseException as e:
        raise ConfigError(
            str(e).splitlines()[0], source=override.source, key=override.key
        ) from None
    return cfg


def _sweep_keys(sweep: Any, prefix: str = "") -> dict[str, Any]:
    # `sweep: {loss.delta: [..]}` and `--set sweep.loss.delta=[..]` (nested) name the same key.
    out: dict[str, Any] = {}
    if isinstance(sweep, Mapping):
        for k, v in sweep.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, Mapping):
                out.update(_sweep_keys(v, key))
            else:
                out[key] = v
    return out


def _check_sweep_conflicts(cfg: DictConfig, overrides: Sequence[_Override]) -> None:
    """A ``--set`` of a key the sweep also sets would be silently replaced by the swept values."""
    swept = _sweep_keys(OmegaConf.to_container(cfg.sweep) if "sweep" in cfg else {})
    for o in overrides:
        if o.key == "sweep" or o.key.startswith("sweep."):
            continue
        for key in o.keys():
            for s in swept:
                if key == s or s.startswith(f"{key}.") or key.startswith(f"{s}."):
                    raise ConfigError(
                        f"also set by the sweep (sweep.{s}: "
                        f"{_short(repr(swept[s]), 40)}); change the sweep instead "
                        f"(--set sweep.{s}=[...]) or drop it from the sweep",
                        source=o.source,
                        key=key,
                    )


def load_config(
    path: str | Path,
    schema: type,
    overrides: Sequence[str] = (),
    *,
    smoke: Mapping[str, Any] | None = None,
):
    """Loads ``path`` (and the files it extends) into an instance of ``schema``.

    Args:
      path: the YAML file. A top-level ``extends: other.yaml`` merges ``other.yaml`` first.
      schema: a dataclass (usually a subclass of :class:`~l1jax.runner.RunConfig`).
      overrides: ``"a.b=value"`` strings (the CLI's ``--set``), applied last; values are parsed
        as YAML (``--set sweep.seed=[0,1,2]``). A mapping value replaces the key's mapping
        (``model={name: espcn}``; a schema section takes its defaults for the fields not given);
        any other value sets the key.
      smoke: dotted-key overrides applied when the merged config has ``smoke: true``, before
        ``overrides`` (so an explicit ``--set`` wins over the smoke profile).

    Returns:
      An instance of ``schema``.

    Raises:
      ConfigError: an unknown key, a wrong type, a missing required value, a bad, binary or
        oversized YAML file, an alias, an interpolation, an ``extends`` cycle, or an override of
        a key the sweep also sets; the message names the file (or ``--set`` argument), the key,
        the expected and the given value.

    Examples:
      >>> import dataclasses, pathlib, tempfile
      >>> from l1jax import runner
      >>> @dataclasses.dataclass
      ... class FitConfig(runner.RunConfig):
      ...     width: int = runner.MISSING  # required: a file must set it
      >>> tmp = tempfile.TemporaryDirectory()
      >>> base, quick = pathlib.Path(tmp.name, "base.yaml"), pathlib.Path(tmp.name, "quick.yaml")
      >>> _ = base.write_text("{width: 8, train: {steps: 500}}")
      >>> _ = quick.write_text("{extends: base.yaml, train: {steps: 20}}")  # base.yaml, then this
      >>> cfg = runner.load_config(quick, FitConfig, ["optimizer.learning_rate=0.01"])
      >>> cfg.width, cfg.train.steps, cfg.optimizer
      (8, 20, {'name': 'adam', 'learning_rate': 0.01})
      >>> runner.load_config(quick, FitConfig, ["width=wide"])
      Traceback (most recent call last):
      ...
      l1jax.runner.errors.ConfigError: --set width=wide: width: expected int, got 'wide' (str)
      >>> tmp.cleanup()
    """
    path = Path(path)
    parsed = [_parse_override(item) for item in overrides]
    cfg: DictConfig = OmegaConf.structured(schema)
    for source, data in _chain(path):
        cfg = _merge(cfg, data, str(source))
    for o in parsed:
        cfg = _apply(cfg, o)
    if smoke and cfg.get("smoke", False):
        for key, value in smoke.items():
            cfg = _merge(cfg, _nest(key, value), f"smoke profile of {schema.__name__}")
        for o in parsed:
            cfg = _apply(cfg, o)
    _check_sweep_conflicts(cfg, parsed)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            "missing required value",
            source=str(path),
            key=missing[0],
            expected=_expected(cfg, missing[0]),
            given="nothing (???)",
        )
    return OmegaConf.to_object(cfg)


def check_name(name: Any, key: str, *, allow_empty: bool = False) -> str:
    """Checks that ``name`` can name a file or folder inside a workdir (a loss label, a tag).

    Raises:
      ConfigError: naming ``key``, for an empty name, a path (``/``, ``\\``, an absolute
        path), ``.`` or ``..``, a leading ``.`` or ``~``, or a control character.
    """
    text = str(name) if name is not None else ""
    bad = (
        (not text and not allow_empty)
        or any(c in text for c in ("/", "\\", "\0"))
        or text in (".", "..")
        or text.startswith((".", "~"))
        or any(ord(c) < 32 for c in text)
        or len(text) > 200
    )
    if bad:
        raise ConfigError(
            "names a file in the workdir",
            key=key,
            expected="a plain name (no '/', '\\', '..', leading '.', at most 200 characters)",
            given=_given(name),
        )
    return text


# --- helpers on loaded configs -----------------------------------------------------------------


def to_container(cfg: Any) -> dict[str, Any]:
    """A dataclass config as nested plain dicts and lists."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg)  # type: ignore[return-value]
    if dataclasses.is_dataclass(cfg):
        return OmegaConf.to_container(OmegaConf.structured(cfg))  # type: ignore[return-value]
    return dict(cfg)


def to_yaml(cfg: Any) -> str:
    """The fully resolved config as YAML (what a run writes to ``config.yaml``)."""
    return yaml.safe_dump(to_container(cfg), sort_keys=False)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    if dataclasses.is_dataclass(data):
        data = to_container(data)
    out: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        if not data and prefix:
            out[prefix] = {}
    else:
        out[prefix] = data
    return out


def diff(a: Any, b: Any) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two configs: ``{key: (a_value, b_value)}``."""
    fa, fb = flatten(a), flatten(b)
    missing = object()
    out = {}
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, missing), fb.get(key, missing)
        if va != vb:
            out[key] = (None if va is missing else va, None if vb is missing else vb)
    return out


# Keys a resumed run may change: they decide when things are logged, saved or shown, or which
# process this is, not what is computed.
RESUME_NEUTRAL = (
    "train.progress",
    "train.progress_every",
    "train.log_every",
    "train.eval_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.steps_per_call",
    "distributed.",
)


def fingerprint(cfg: Any, *, resume_only: bool = False, **extra: Any) -> str:
    """The sha256 of a config as sorted JSON: of every key (what the compiled program depends
    on), or with ``resume_only`` of :func:`identity` (what a checkpoint must match to resume);
    ``extra`` JSON-serialisable data (a task's args) is hashed with it."""
    data = {"config": identity(cfg) if resume_only else flatten(cfg), **extra}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def identity(cfg: Any) -> dict[str, Any]:
    """The flattened config minus :data:`RESUME_NEUTRAL` keys: what must match to resume."""
    return {
        k: v
        for k, v in flatten(cfg).items()
        if not any(k == n or (n.endswith(".") and k.startswith(n)) for n in RESUME_NEUTRAL)
    }
