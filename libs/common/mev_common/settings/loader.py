"""Reading the config file: strict YAML, one clear line per problem, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mev_common.settings.errors import format_error, kind_of
from mev_common.settings.model import DEFAULT_CONFIG, FILE_DATA, Settings


class ConfigError(Exception):
    """The config is invalid; `problems` holds one human line per problem (without the path)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("MEV_CONFIG") or DEFAULT_CONFIG)


def _yaml_loader() -> type:
    """A safe loader that refuses duplicate keys: YAML keeps the last one silently, which
    would let a second `max_gas_price:` quietly replace the first."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse the YAML file; a missing file, broken YAML or a non-mapping is one clear line."""
    import yaml

    if not path.is_file():
        raise ConfigError(path, ["file not found: pass --config PATH or set MEV_CONFIG"])
    try:
        data = yaml.load(path.read_text(), Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            path, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read the file: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            path,
            [
                f"(top level): got {kind_of(data)}; "
                "expected a mapping of sections (chain:, nats:...)"
            ],
        )
    return data


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate; raise ConfigError listing every problem, never a traceback."""
    cfg = resolve_config_path(path)
    token = FILE_DATA.set(read_config_file(cfg))
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(cfg, [format_error(dict(e)) for e in exc.errors()]) from None
    finally:
        FILE_DATA.reset(token)
