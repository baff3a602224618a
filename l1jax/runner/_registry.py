"""Name -> factory tables, so that a config picks a loss, optimizer, model or dataset by name.

A config names a piece with a mapping ``{name: <name>, <keyword>: <value>, ...}`` (or just the
name). :meth:`Registry.build` looks the name up and calls the factory with the other keys as
keyword arguments, after checking them against the factory's signature, so that a typo fails
with the list of accepted names instead of deep inside a traced function.

The tables themselves are in :mod:`l1jax.runner.registry`.
"""

from __future__ import annotations

import collections.abc
import difflib
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import jax
import numpy as np

__all__ = ["Registry", "UnknownNameError", "split_spec", "check_kwargs"]

T = TypeVar("T")


class UnknownNameError(LookupError):
    """Raised for a name no registry entry has; the message lists the known names."""

    def __init__(self, kind: str, name: object, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(str(name), self.known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(
            f"unknown {kind} {name!r}{hint}; known {kind}s: {', '.join(self.known) or '(none)'}"
        )


def split_spec(spec: str | Mapping[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    """``"adam"`` or ``{"name": "adam", "learning_rate": 1e-3}`` -> ``("adam", {...})``."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise TypeError(f"a {kind} is given as a name or a mapping with a 'name' key, got {spec!r}")
    kwargs = dict(spec)
    name = kwargs.pop("name")
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a string, got name={name!r}")
    return name, kwargs


_SIMPLE_TYPES = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


def _type_ok(value: Any, annotation: Any) -> bool | None:
    """True/False for the plain annotations a config can violate, None when it cannot tell."""
    if not isinstance(value, (int, float, str, type(None))):
        return None  # arrays, tracers (swept values), callables: not a config typo
    if isinstance(value, str):
        return _accepts_str(value, annotation)
    if annotation in _SIMPLE_TYPES:
        if isinstance(value, bool) and annotation is not bool:
            return False
        return isinstance(value, _SIMPLE_TYPES[annotation])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None:
            return type(None) in args
        results = [_type_ok(value, a) for a in args if a is not type(None)]
        if any(r is True for r in results):
            return True
        if results and all(r is False for r in results):
            return False
    return None


def _accepts_str(value: str, annotation: Any) -> bool | None:
    if annotation is Any or annotation is object or annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        results = [_accepts_str(value, a) for a in typing.get_args(annotation)]
        if any(r is True for r in results):
            return True
        return False if all(r is False for r in results) else None
    if origin is collections.abc.Callable or annotation in (collections.abc.Callable, jax.Array):
        return False
    if isinstance(annotation, type):
        return issubclass(str, annotation)
    return None


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is collections.abc.Callable:
        return "a function"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        names = []
        for a in typing.get_args(annotation):
            name = "null" if a is type(None) else _type_name(a)
            if name not in names:
                names.append(name)
        if "null" in names:  # say "or null" last
            names = [n for n in names if n != "null"] + ["null"]
        return " or ".join(names)
    if (
        annotation in (int, float, complex)
        or (
            isinstance(annotation, type)
            and issubclass(annotation, np.number | np.ndarray | np.bool_)
        )
        or annotation is jax.Array
    ):
        return "number"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def check_kwargs(
    fn: Callable, kwargs: Mapping[str, Any], *, what: str, provided: Iterable[str] = ()
) -> None:
    """Raises ``TypeError`` naming ``what`` when ``kwargs`` do not fit ``fn``'s signature.

    Args:
      fn: the factory.
      kwargs: the keyword arguments taken from a config.
      what: how to name the factory in messages, e.g. ``"optimizer 'adamw'"``.
      provided: parameters the caller fills in itself (not expected in the config).
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    provided = set(provided)
    accepted = [
        n
        for n, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in provided
    ]
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(
                f"{what} got an unexpected keyword {key!r}{hint}; it accepts: "
                f"{', '.join(accepted) or '(no keywords)'}"
            )
    missing = [
        n
        for n in accepted
        if params[n].default is inspect.Parameter.empty
        and params[n].kind is not inspect.Parameter.VAR_POSITIONAL
        and n not in kwargs
    ]
    if missing:
        raise TypeError(f"{what} is missing required keyword(s): {', '.join(missing)}")
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # one unresolvable annotation: use the others as written
        hints = {
            n: p.annotation
            for n, p in params.items()
            if p.annotation is not inspect.Parameter.empty and not isinstance(p.annotation, str)
        }
    for key, value in kwargs.items():
        if key in hints and _type_ok(value, hints[key]) is False:
            raise TypeError(
                f"{what}: {key} expected {_type_name(hints[key])}, got {value!r} "
                f"({type(value).__name__})"
            )


class Registry(Generic[T]):
    """A mapping from names to objects of one kind, with helpful unknown-name errors.

    Args:
      kind: what the entries are, used in messages (``"optimizer"``).
      entries: the initial ``{name: object}`` entries.
      fallback: ``name -> object or None`` consulted for names not registered explicitly (used to
        expose every optax optimizer without listing them).
      fallback_names: the names ``fallback`` knows, for error messages and :meth:`names`.
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, T] | None = None,
        *,
        fallback: Callable[[str], T | None] | None = None,
        fallback_names: Callable[[], Iterable[str]] | None = None,
    ):
        self.kind = kind
        self._entries: dict[str, T] = dict(entries or {})
        self._fallback = fallback
        self._fallback_names = fallback_names

    def register(self, name: str, obj: T | None = None, *, overwrite: bool = False):
        """Registers ``obj`` under ``name``; without ``obj``, returns a decorator."""

        def add(o: T) -> T:
            if name in self._entries and self._entries[name] is not o and not overwrite:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered; pass overwrite=True to replace"
                )
            self._entries[name] = o
            return o

        if obj is None:
            return add
        return add(obj)

    def names(self) -> list[str]:
        names = set(self._entries)
        if self._fallback_names is not None:
            names.update(self._fallback_names())
        return sorted(names)

    def get(self, name: str) -> T:
        """The entry called ``name``; raises :class:`UnknownNameError` listing known names."""
        if name in self._entries:
            return self._entries[name]
        if self._fallback is not None and isinstance(name, str):
            obj = self._fallback(name)
            if obj is not None:
                return obj
        raise UnknownNameError(self.kind, name, self.names())

    def __contains__(self, name: object) -> bool:
        try:
            self.get(name)  # type: ignore[arg-type]
        except UnknownNameError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def validate(
        self, spec: str | Mapping[str, Any], *, provided: Iterable[str] = ()
    ) -> tuple[str, T, dict[str, Any]]:
        """Checks a ``{name: ..., **kwargs}`` spec without calling anything.

        Returns:
          ``(name, entry, kwargs)``.

        Raises:
          UnknownNameError: for an unknown name.
          TypeError: for keywords the entry does not accept, missing required ones, or values of
            the wrong plain type (int, float, bool, str).
        """
        name, kwargs = split_spec(spec, self.kind)
        entry = self.get(name)
        if callable(entry):
            check_kwargs(entry, kwargs, what=f"{self.kind} {name!r}", provided=provided)
        return name, entry, kwargs

    def partial(self, spec: str | Mapping[str, Any]) -> Callable:
        """The entry with the spec's keywords bound: ``{name: huber, delta: 0.5}`` ->
        ``functools.partial(huber, delta=0.5)`` (for entries used as functions, like losses)."""
        name, kwargs = split_spec(spec, self.kind)
        entry = typing.cast(Callable[..., Any], self.get(name))  # partial is for functions
        try:
            params = inspect.signature(entry).parameters.values()
            positional = [
                p.name
                for p in params
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                and p.default is inspect.Parameter.empty
            ]
        except (TypeError, ValueError):
            positional = []
        self.validate(spec, provided=positional)
        return functools.partial(entry, **kwargs)

    def build(self, spec: str | Mapping[str, Any], /, **provided: Any) -> Any:
        """Calls the entry named by ``spec`` with the spec's keywords and ``provided``."""
        name, entry, kwargs = self.validate(spec, provided=provided)
        return entry(**kwargs, **provided)  # type: ignore[operator]
