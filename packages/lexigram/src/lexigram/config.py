"""Configuration: YAML files and ``LEX_`` environment variables, read into typed sections.

Layers, lowest first::

    field defaults
    application.yaml                      (in LEX_CONFIG_DIR, else the working directory)
    application.{LEX_PROFILE}.yaml
    overrides given in code               (a dict of sections)
    LEX_{SECTION}__{KEY} variables        (``__`` nests: LEX_AI_LLM__THINKING__BUDGET_TOKENS)
    arguments passed explicitly

``ConfigSource`` merges the file, override and environment layers into sections;
``SectionSettings`` is the pydantic-settings base class that validates one section.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, get_args

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lexigram.validation import mask_secret, safe_url

__all__ = ["ConfigError", "ConfigIssue", "ConfigSource", "SectionSettings"]

ENV_PREFIX = "LEX_"
NESTING_DELIMITER = "__"
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Field-name words whose values are masked in error messages. Suffixes, so that ``api_key`` and
# ``accesstoken`` are masked but ``max_tokens`` is not.
_SENSITIVE_SUFFIXES = (
    "key",
    "secret",
    "secrets",
    "token",
    "password",
    "passwd",
    "credentials",
    "authorization",
    "cookie",
    "headers",
)
_MAX_SHOWN_VALUE = 80
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One invalid value: its dotted key inside the section, how it is shown, and the rule."""

    key: str
    value: str | None
    rule: str

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.key}: {self.rule}"
        return f"{self.key} = {self.value}: {self.rule}"


class ConfigError(ValueError):
    """Configuration that cannot be used; the message says which section, key and rule."""

    def __init__(
        self, message: str, *, section: str | None = None, issues: Sequence[ConfigIssue] = ()
    ) -> None:
        super().__init__(message)
        self.section = section
        self.issues = tuple(issues)

    @classmethod
    def from_validation_error(
        cls, error: ValidationError, *, section: str, model: type[BaseModel]
    ) -> ConfigError:
        """Describe a pydantic ``ValidationError`` of ``model``, masking secret values."""
        issues = []
        for detail in error.errors():
            loc = tuple(detail["loc"])
            shown = None
            if detail["type"] != "missing":
                shown = _show_value(detail["input"], secret=_is_secret(model, loc))
            key = ".".join(str(part) for part in loc) or "(whole section)"
            issues.append(ConfigIssue(key=key, value=shown, rule=detail["msg"]))
        lines = [f"invalid configuration in section {section!r} ({model.__name__}):"]
        lines += [f"  {issue}" for issue in issues]
        return cls("\n".join(lines), section=section, issues=issues)


class ConfigSource:
    """Configuration sections merged from YAML files, overrides and ``LEX_`` variables.

    ``directory`` is a folder holding ``application.yaml`` (and ``application.{profile}.yaml``)
    or a YAML file itself; by default ``LEX_CONFIG_DIR``, else the working directory. Missing
    files are fine. ``profile`` defaults to ``LEX_PROFILE``. YAML strings may use ``${VAR}`` and
    ``${VAR:-default}``.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.profile = profile if profile is not None else self.environ.get("LEX_PROFILE") or None
        base_file, profile_file = self._locate_files(directory)
        self.files = tuple(path for path in (base_file, profile_file) if path and path.is_file())
        layers = [self._read_yaml(path) for path in self.files]
        if overrides:
            layers.append(_check_sections(dict(overrides), origin="overrides"))
        layers.append(_environment_sections(self.environ))
        merged: dict[str, Any] = {}
        for layer in layers:
            merged = _deep_merge(merged, layer)
        self._sections = merged

    @classmethod
    def from_any(cls, config: ConfigSource | Mapping[str, Any] | str | Path | None) -> ConfigSource:
        """Build a source from ``None`` (the defaults), a dict of sections, or a folder or file.

        A dict of sections is layered over the YAML files, under the environment.
        """
        if config is None:
            return cls()
        if isinstance(config, ConfigSource):
            return config
        if isinstance(config, str | Path):
            return cls(config)
        if isinstance(config, Mapping):
            return cls(overrides=config)
        raise TypeError(
            "config must be None, a dict of sections, a path or a ConfigSource, "
            f"not {type(config).__name__}"
        )

    def section(self, name: str) -> dict[str, Any]:
        """The merged values of one section (a fresh copy; empty when nothing sets it)."""
        return copy.deepcopy(self._sections.get(name, {}))

    def to_dict(self) -> dict[str, Any]:
        """All merged sections (a fresh copy)."""
        return copy.deepcopy(self._sections)

    def __repr__(self) -> str:
        files = ", ".join(str(path) for path in self.files)
        return f"ConfigSource(files=[{files}], profile={self.profile!r})"

    def _locate_files(self, directory: str | Path | None) -> tuple[Path, Path | None]:
        if directory is None:
            from_env = self.environ.get("LEX_CONFIG_DIR")
            path = Path(from_env) if from_env else Path.cwd()
            origin = "LEX_CONFIG_DIR" if from_env else "working directory"
        else:
            path, origin = Path(directory), "config path"
        if path.is_dir():
            base = path / "application.yaml"
        elif path.is_file():
            base = path
        else:
            raise ConfigError(f"{origin} {str(path)!r} does not exist")
        if not self.profile:
            return base, None
        return base, base.with_name(f"{base.stem}.{self.profile}{base.suffix}")

    def _read_yaml(self, path: Path) -> dict[str, Any]:
        import yaml  # only when a YAML file exists: keeps plain imports fast

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            # Only the position: PyYAML's own message quotes the line, which may hold a secret.
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
        return _check_sections(_interpolate(data, self.environ, path, ()), origin=str(path))


class SectionSettings(BaseSettings):
    """Base class for one typed configuration section.

    Subclasses set ``__section__`` (for example ``"ai_llm"``). Constructing one reads, highest
    first: the arguments, ``LEX_{SECTION}__*`` variables, the YAML files of the default
    ``ConfigSource``, the field defaults. Invalid values raise ``ConfigError``.
    ``model_fields_set`` holds only the fields given as arguments.
    """

    __section__: ClassVar[str] = ""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            # ``from None``: pydantic's own message would print secret inputs in the traceback.
            raise ConfigError.from_validation_error(
                exc, section=type(self).__section__, model=type(self)
            ) from None
        # ``model_fields_set`` means "given by the caller": values read from files or the
        # environment are not, so that a provider can layer only the explicit ones on top.
        explicit = {name for name in values if name in type(self).model_fields}
        object.__setattr__(self, "__pydantic_fields_set__", explicit)

    @classmethod
    def load(
        cls, source: ConfigSource | Mapping[str, Any] | str | Path | None = None, /, **explicit: Any
    ) -> Self:
        """Build the section from ``source`` (see ``ConfigSource.from_any``) and ``explicit``.

        Precedence: ``explicit`` > environment > the source's YAML and overrides > defaults.
        """
        token = _active_source.set(ConfigSource.from_any(source))
        try:
            return cls(**explicit)
        finally:
            _active_source.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the section from ``ConfigSource`` (environment over YAML)."""
        return init_settings, _SectionSource(cls)


_active_source: ContextVar[ConfigSource | None] = ContextVar("lexigram_config", default=None)


class _SectionSource(PydanticBaseSettingsSource):
    """Feeds one section of the active ``ConfigSource`` to pydantic-settings."""

    def __init__(self, settings_cls: type[SectionSettings]) -> None:
        super().__init__(settings_cls)
        self.section_name = settings_cls.__section__

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: ``__call__`` reads the whole section at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.section_name:
            return {}
        source = _active_source.get() or ConfigSource()
        values = source.section(self.section_name)
        # Environment values are strings; a list or model field may be given as JSON.
        for name, field in self.settings_cls.model_fields.items():
            value = values.get(name)
            if isinstance(value, str) and self.field_is_complex(field):
                # Not JSON: leave it to validation, which names the field and the rule.
                with contextlib.suppress(ValueError):
                    values[name] = self.decode_complex_value(name, field, value)
        return values


def _environment_sections(environ: Mapping[str, str]) -> dict[str, Any]:
    """Sections from the environment: ``LEX_AI_LLM__THINKING__BUDGET_TOKENS=5`` becomes
    ``{"ai_llm": {"thinking": {"budget_tokens": "5"}}}``."""
    sections: dict[str, Any] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split(NESTING_DELIMITER)
        if len(path) < 2 or not all(path):
            continue
        node = sections
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = environ[name]
    return sections


def _interpolate(value: Any, environ: Mapping[str, str], file: Path, key: tuple[str, ...]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a YAML document."""
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, file, (*key, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, environ, file, key) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        variable, default = match.group(1), match.group(2)
        found = environ.get(variable)
        if found:
            return found
        if default is not None:
            return default
        if found is not None:
            return found
        raise ConfigError(
            f"{file}: {'.'.join(key)} uses ${{{variable}}}, but the environment variable "
            f"{variable} is not set; set it or give a default: ${{{variable}:-value}}"
        )

    return _INTERPOLATION.sub(substitute, value)


def _check_sections(data: dict[Any, Any], *, origin: str) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for name, values in data.items():
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{origin}: section {name!r} must be a mapping, got {type(values).__name__}",
                section=str(name),
            )
        sections[str(name)] = dict(values)
    return sections


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def _is_sensitive_name(name: str) -> bool:
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return any(word.endswith(_SENSITIVE_SUFFIXES) for word in words)


def _is_secret_annotation(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes):
        return True
    return any(_is_secret_annotation(arg) for arg in get_args(annotation))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if found := _model_in(arg):
            return found
    return None


def _is_secret(model: type[BaseModel], loc: tuple[int | str, ...]) -> bool:
    """Whether the value at ``loc`` is a secret by its type or its name."""
    current: type[BaseModel] | None = model
    for part in loc:
        if not isinstance(part, str):
            continue
        if _is_sensitive_name(part):
            return True
        field = current.model_fields.get(part) if current else None
        if field is not None:
            if _is_secret_annotation(field.annotation):
                return True
            current = _model_in(field.annotation)
    return False


def _show_value(value: Any, *, secret: bool) -> str:
    if secret:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return repr(mask_secret(raw))
    shown = repr(_redact(value))
    if "://" in shown:  # a URL's userinfo (``https://user:password@host``) is a secret too
        shown = _URL_IN_TEXT.sub(lambda match: safe_url(match.group(0)), shown)
    if len(shown) > _MAX_SHOWN_VALUE:
        shown = shown[: _MAX_SHOWN_VALUE - 3] + "..."
    return shown


def _redact(value: Any) -> Any:
    """Mask the values of sensitive-looking keys inside nested mappings and lists."""
    if isinstance(value, Mapping):
        return {
            key: mask_secret(str(item))
            if _is_sensitive_name(str(key)) and not isinstance(item, Mapping)
            else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    return value
