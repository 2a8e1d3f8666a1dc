"""The user's own files: where they live, and the stored API keys (``lexigram-llm keys``).

Keys are kept in ``keys.json`` in the user's config directory, a file only the user can read
(mode 0600, in a directory of mode 0700). The library reads a stored key only when neither the
config nor the provider's environment variable holds one.

The directories are platformdirs' ``user_config_dir`` and ``user_data_dir`` for
``lexigram-llm``: on Linux the XDG base directories (``XDG_CONFIG_HOME``/``XDG_DATA_HOME``, else
``~/.config`` and ``~/.local/share``), ``~/Library/Application Support`` on macOS, the roaming
``APPDATA`` folder on Windows; the same places the hand-written lookup used before, so files
stored by earlier versions are still found. ``LEXIGRAM_LLM_HOME`` puts both in one directory
(tests, portable installs).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from lexigram.ai.llm.exceptions import ConfigurationError

__all__ = [
    "config_dir",
    "data_dir",
    "ensure_private_dir",
    "keys_file",
    "read_stored_keys",
    "store_key",
    "stored_key",
]

APP_NAME = "lexigram-llm"
HOME_VARIABLE = "LEXIGRAM_LLM_HOME"


def _home_override() -> Path | None:
    home = os.environ.get(HOME_VARIABLE)
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    """Where the user's settings and keys live (not created)."""
    home = _home_override()
    if home is not None:
        return home
    import platformdirs  # only when a user file is wanted

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True))


def data_dir() -> Path:
    """Where the user's data (the chat log) lives (not created)."""
    home = _home_override()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False, roaming=True))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed; the directory itself only the user may enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # not ours to change (a shared mount): leave it
        path.chmod(0o700)
    return path


def keys_file() -> Path:
    """The file holding stored API keys."""
    return config_dir() / "keys.json"


def read_stored_keys() -> dict[str, str]:
    """Every stored key by provider name (empty when nothing is stored)."""
    path = keys_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the key file {str(path)!r}: {exc.strerror}; fix its permissions or "
            "delete it and store the keys again with 'lexigram-llm keys set PROVIDER'"
        ) from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        # Never echo the content: it holds keys.
        raise ConfigurationError(
            f"the key file {str(path)!r} is not a JSON object of provider names to keys; delete "
            "it and store the keys again with 'lexigram-llm keys set PROVIDER'"
        ) from None
    return data


def stored_key(provider: str, env_names: tuple[str, ...] = ()) -> str | None:
    """The stored key for ``provider``, else one stored for a provider that reads the same
    environment variable (``openai`` and ``openai_responses`` share ``OPENAI_API_KEY``)."""
    keys = read_stored_keys()
    if keys.get(provider):
        return keys[provider]
    if not keys or not env_names:
        return None
    from lexigram.ai.llm.exceptions import MissingExtraError
    from lexigram.ai.llm.registry import default_registry

    for name, key in sorted(keys.items()):
        try:
            profile = default_registry.profile(name) if name in default_registry else None
        except MissingExtraError:
            continue
        if key and profile is not None and set(profile.api_key_env) & set(env_names):
            return key
    return None


def store_key(provider: str, key: str) -> Path:
    """Store (replace) the key for ``provider``; returns the key file's path.

    Written to a fresh mode-0600 file that replaces the old one in one step, so the key file is
    never readable by others, not even for a moment, and never half-written."""
    keys = read_stored_keys()
    keys[provider] = key
    path = keys_file()
    ensure_private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(keys, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path
