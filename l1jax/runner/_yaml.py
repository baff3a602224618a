"""YAML read as data only: no anchors or aliases, a size cap, errors that never echo a file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from l1jax.runner.errors import ConfigError

__all__ = ["MAX_CONFIG_BYTES", "read_yaml", "parse_yaml", "yaml_problem", "header_command"]

# Configs are small text files: anything larger is refused before it is parsed.
MAX_CONFIG_BYTES = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors and aliases (``&a``, ``*a``, ``<<: *a``).

    Aliases let a few lines expand into an exponentially large document (the "billion laughs"):
    configs share values through ``extends:`` instead, so the loader refuses them outright.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases (&, *) are not allowed in configs; share "
                "values with 'extends:'",
                event.start_mark,
            )
        return super().compose_node(parent, index)


# YAML 1.1 (PyYAML) reads 1e-3 as a string; configs, like YAML 1.2 and OmegaConf, read a float.
_NoAliasLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` without aliases; raises ``yaml.YAMLError`` or ``RecursionError``."""
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply"
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(e, "problem", None) or "cannot parse"
    # The parser's own words only, never the file's text.
    return f"invalid YAML{where}: {problem[:120]}"


def read_yaml(path: str | Path) -> Any:
    """A YAML config file as plain data, read as data only.

    The file must be a regular UTF-8 text file (not a directory, device or pipe) of at most
    :data:`MAX_CONFIG_BYTES` bytes without anchors or aliases. Error messages name the file and
    the problem, never its text.

    Raises:
      ConfigError: a missing file, a directory, a binary or oversized file, or invalid YAML.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{str(path)!r} is a directory, not a YAML file")
        if path.exists() and not path.is_file():
            # A device or a pipe (/dev/zero, /dev/stdin) could be endless or block.
            raise ConfigError(f"{str(path)!r} is not a regular file")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{str(path)!r} is {size} bytes; a config is at most {MAX_CONFIG_BYTES} bytes"
            )
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as e:
        raise ConfigError(f"cannot read {str(path)!r}: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{str(path)!r} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{str(path)!r} is not a text (UTF-8) file") from None
    try:
        return parse_yaml(text)
    except (yaml.YAMLError, RecursionError) as e:
        raise ConfigError(yaml_problem(e), source=str(path)) from None


def header_command(path: str | Path) -> str | None:
    """The command in a config's header comment: its first ``# python ...`` line, if any."""
    for line in Path(path).read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            return None
        text = stripped.lstrip("#").strip()
        if text.startswith(("python ", "./", ".venv/bin/python ")):
            return text
    return None
