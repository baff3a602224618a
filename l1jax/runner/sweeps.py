"""Hyperparameter grids trained as one vmapped program.

``sweep: {seed: [0, 1, 2], loss.delta: [0.5, 1.0]}`` in a config names dotted keys of that
config and their values; the runner trains the grid of all combinations (here 6 points, the last
key varying fastest) in one compiled program, ``jax.vmap``-ed over stacked parameters and
optimizer states. Each grid point sees the config with its values bound in as traced scalars, so
only numbers (int, float, bool) used as array values can be swept: a string, or a number used as
a shape or in Python control flow, raises :class:`~l1jax.runner.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

from l1jax.runner.config import flatten
from l1jax.runner.errors import ConfigError

__all__ = ["Grid", "make_grid", "bind", "get_path"]

_RAISE = object()
_ABSENT = object()


def get_path(cfg: Any, path: str, default: Any = _RAISE) -> Any:
    """``cfg.a["b"].c`` for ``path="a.b.c"`` through dataclasses and mappings."""
    node = cfg
    for part in path.split("."):
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            if not any(f.name == part for f in dataclasses.fields(node)):
                if default is _RAISE:
                    raise KeyError(path)
                return default
            node = getattr(node, part)
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            if default is _RAISE:
                raise KeyError(path)
            return default
    return node


def _field_hint(cfg: Any, path: str) -> Any:
    """The declared type of a dataclass field at ``path``; ``Any`` inside mappings."""
    *parents, last = path.split(".")
    owner = get_path(cfg, ".".join(parents)) if parents else cfg
    if dataclasses.is_dataclass(owner):
        return typing.get_type_hints(type(owner)).get(last, Any)
    return Any


def _set_path(cfg: Any, parts: list[str], value: Any) -> Any:
    head, rest = parts[0], parts[1:]
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        child = getattr(cfg, head)
        new = value if not rest else _set_path(child, rest, value)
        return dataclasses.replace(cfg, **{head: new})
    if isinstance(cfg, Mapping):
        out = dict(cfg)
        out[head] = value if not rest else _set_path(cfg[head], rest, value)
        return out
    raise KeyError(head)


def bind(cfg: Any, values: Mapping[str, Any]) -> Any:
    """A copy of ``cfg`` with each dotted key of ``values`` replaced (values may be tracers).

    Examples:
      >>> from l1jax import runner
      >>> base = runner.RunConfig()
      >>> cfg = runner.bind(base, {"train.steps": 5, "optimizer.learning_rate": 0.1})
      >>> cfg.train.steps, cfg.optimizer
      (5, {'name': 'adam', 'learning_rate': 0.1})
      >>> base.train.steps, base.optimizer["learning_rate"]  # unchanged: bind copies
      (1000, 0.001)
    """
    for path, value in values.items():
        cfg = _set_path(cfg, path.split("."), value)
    return cfg


@dataclasses.dataclass(frozen=True)
class Grid:
    """The points of a sweep.

    Attributes:
      keys: the swept dotted keys, in config order.
      axes: the values of each key (``axes[i]`` for ``keys[i]``).
      points: one ``{key: value}`` per grid point; the last key varies fastest.
      values: ``{key: array of shape (len(points),)}``: what the program is vmapped over
        (int64/float64 here; JAX canonicalises them to its default precision).

    Examples:
      >>> from l1jax import runner
      >>> sweep = {"seed": [0, 1, 2], "optimizer.learning_rate": [0.1, 0.01]}
      >>> grid = runner.make_grid(runner.RunConfig(sweep=sweep))
      >>> grid.keys, grid.shape, len(grid)
      (('seed', 'optimizer.learning_rate'), (3, 2), 6)
      >>> grid.points[1]  # the last key varies fastest
      {'seed': 0, 'optimizer.learning_rate': 0.01}
      >>> grid.values["seed"]
      array([0, 0, 1, 1, 2, 2])
    """

    keys: tuple[str, ...]
    axes: tuple[tuple[Any, ...], ...]
    points: tuple[dict[str, Any], ...]
    values: dict[str, np.ndarray]

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's shape, one axis per key: ``reshape(result, grid.shape)`` un-flattens."""
        return tuple(len(a) for a in self.axes)

    def __len__(self) -> int:
        return len(self.points)


def _flatten_sweep(sweep: Mapping[str, Any]) -> dict[str, Any]:
    # `--set sweep.loss.delta=[..]` nests; `sweep: {loss.delta: [..]}` does not: accept both.
    out = {}
    for key, value in sweep.items():
        if isinstance(value, Mapping):
            for sub, v in _flatten_sweep(value).items():
                out[f"{key}.{sub}"] = v
        else:
            out[str(key)] = value
    return out


def _is_float_field(cfg: Any, key: str) -> bool:
    return _field_hint(cfg, key) is float or isinstance(get_path(cfg, key), float)


def make_grid(cfg: Any) -> Grid | None:
    """The grid of ``cfg.sweep``, or None when it is empty.

    Raises:
      ConfigError: a key the config does not have, an empty or non-list value, a string or
        non-numeric value, or a value of the wrong type for its field.

    Examples:
      >>> from l1jax import runner
      >>> print(runner.make_grid(runner.RunConfig()))  # no sweep
      None
      >>> runner.make_grid(runner.RunConfig(sweep={"train.clip_norm": [0.5, 1.0]})).points
      ({'train.clip_norm': 0.5}, {'train.clip_norm': 1.0})
      >>> runner.make_grid(runner.RunConfig(sweep={"optimizer.name": ["adam", "sgd"]}))
      Traceback (most recent call last):
      ...
      l1jax.runner.errors.ConfigError: sweep.optimizer.name: strings cannot be vmapped; ...
    """
    sweep = _flatten_sweep(getattr(cfg, "sweep", None) or {})
    if not sweep:
        return None
    axes = []
    for key, vals in sweep.items():
        where = f"sweep.{key}"
        if key == "sweep" or key.startswith("sweep."):
            raise ConfigError(source=None, key=where, expected="a key outside sweep", given=key)
        current = get_path(cfg, key, default=_ABSENT)
        if current is _ABSENT:
            known = sorted(k for k in flatten(cfg) if not k.startswith("sweep"))
            raise ConfigError(
                "unknown key",
                key=where,
                expected=f"a key of the config ({', '.join(known)})",
                given=repr(key),
            )
        if not isinstance(vals, (list, tuple)) or not vals:
            raise ConfigError(key=where, expected="a non-empty list of values", given=repr(vals))
        hint = _field_hint(cfg, key)
        kind = hint if hint in (int, float, bool) else type(current)
        for v in vals:
            if isinstance(v, str) or isinstance(current, str) or hint is str:
                raise ConfigError(
                    "strings cannot be vmapped; loop over them in the study instead",
                    key=where,
                    expected="numbers",
                    given=repr(list(vals)),
                )
            if not isinstance(v, (int, float, bool)):
                raise ConfigError(
                    "only scalar numbers can be vmapped",
                    key=where,
                    expected="int, float or bool",
                    given=f"{v!r} ({type(v).__name__})",
                )
            if kind is int and (isinstance(v, float) or isinstance(v, bool)):
                raise ConfigError(key=where, expected="a list of int", given=f"{v!r}")
            if kind is bool and not isinstance(v, bool):
                raise ConfigError(key=where, expected="a list of bool", given=f"{v!r}")
        seen: list[Any] = []
        for v in vals:
            if any(v == u for u in seen):
                raise ConfigError(
                    "each value once: a repeated grid point trains the same thing twice",
                    key=where,
                    expected="distinct values",
                    given=repr(list(vals)),
                )
            seen.append(v)
        axes.append(tuple(vals))
    keys = tuple(sweep)
    points = tuple(dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes))
    values = {}
    for i, key in enumerate(keys):
        col = [p[key] for p in points]
        dtype: type[np.generic]
        if all(isinstance(v, bool) for v in axes[i]):
            dtype = np.bool_
        elif all(isinstance(v, int) for v in axes[i]) and not _is_float_field(cfg, key):
            dtype = np.int64
        else:
            dtype = np.float64
        values[key] = np.asarray(col, dtype=dtype)
    return Grid(keys=keys, axes=tuple(axes), points=points, values=values)
