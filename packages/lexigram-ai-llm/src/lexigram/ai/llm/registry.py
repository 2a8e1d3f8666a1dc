"""``ProviderRegistry``: provider names to clients, and ``create_llm_client``.

Built-in providers are known by name without importing their modules; a user registers a client
class, a factory, or a new OpenAI-compatible host as a profile, at run time. There is one
default table: ``ProviderRegistry().register(...)`` adds to it, and ``create_llm_client`` and
``LLMModule`` read it. ``ProviderRegistry(private=True)`` has a table of its own.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.exceptions import MissingExtraError, UnknownProviderError
from lexigram.ai.llm.providers import BUILTIN_PROVIDERS, FAMILY_MODULES
from lexigram.ai.llm.providers.base import ProviderProfile
from lexigram.contracts.ai import LLMClientProtocol

__all__ = ["ProviderInfo", "ProviderRegistry", "create_llm_client", "default_registry"]

logger = logging.getLogger("lexigram.ai.llm")

# A client class or a factory ``(config, **policies) -> client``; what it builds must satisfy
# ``LLMClientProtocol`` (an ``AbstractLLMClient`` subclass does).
ClientFactory = Callable[..., Any]

LOCAL_PROVIDER = "local"

# The provider used when a key is configured but no provider is (the original library's default).
KEY_DEFAULT_PROVIDER = "openai"

# Other names of built-in providers (the original library's spellings).
ALIASES: dict[str, str] = {"aws-bedrock": "bedrock", "google-vertex": "vertex"}

# The methods a client must have: the public members of ``LLMClientProtocol``.
_PROTOCOL_METHODS = tuple(name for name in vars(LLMClientProtocol) if not name.startswith("_"))


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What ``list()`` shows about a provider (never a key, only whether one is set)."""

    name: str
    family: str
    capabilities: frozenset[str] = frozenset()
    api_key_env: tuple[str, ...] = ()
    key_set: bool = False
    requires_key: bool = True
    description: str = ""


@dataclass(slots=True)
class _Entry:
    name: str
    family: str
    factory: ClientFactory | None = None
    profile: ProviderProfile | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)


def _builtin_entries() -> dict[str, _Entry]:
    entries = {name: _Entry(name, family) for name, family in BUILTIN_PROVIDERS.items()}
    entries[LOCAL_PROVIDER] = _Entry(LOCAL_PROVIDER, "local")
    return entries


# The default table every ``ProviderRegistry()`` shares, and the lock of every registration
# (registering is rare; one lock keeps check-then-insert whole for shared tables).
_DEFAULT_ENTRIES: dict[str, _Entry] = _builtin_entries()
_REGISTER_LOCK = threading.Lock()


class ProviderRegistry:
    """Maps provider names to the way their clients are built.

    ``ProviderRegistry()`` is a handle on the one default table, the one ``create_llm_client``
    and ``LLMModule`` use when given no registry, so a provider registered through it is seen
    everywhere. For a table of its own (tests, per-tenant setups), build
    ``ProviderRegistry(private=True)`` (built-ins included) or
    ``ProviderRegistry(include_builtins=False)`` (empty, always private) and pass it as
    ``create_llm_client(config, registry=...)`` or ``LLMModule.configure(..., registry=...)``.
    """

    def __init__(self, *, include_builtins: bool = True, private: bool = False) -> None:
        if not include_builtins:
            self._entries: dict[str, _Entry] = {}
        elif private:
            self._entries = _builtin_entries()
        else:
            self._entries = _DEFAULT_ENTRIES

    @property
    def private(self) -> bool:
        """Whether this registry has a table of its own (not the default one)."""
        return self._entries is not _DEFAULT_ENTRIES

    # -- registration ----------------------------------------------------------------------

    def register(
        self,
        name: str,
        client: type[Any] | ClientFactory,
        *,
        capabilities: frozenset[str] | set[str] = frozenset(),
        replace: bool = False,
    ) -> None:
        """Register a client class or a factory ``(config, **policies) -> client``.

        A class must satisfy ``LLMClientProtocol`` (subclass ``AbstractLLMClient`` to get it);
        one that does not is refused with a ``TypeError``. A factory's product is checked when
        a client is built."""
        _check_client_class(name, client)
        with _REGISTER_LOCK:
            self._check_free(name, replace)
            self._entries[name] = _Entry(
                name, "custom", factory=client, capabilities=frozenset(capabilities)
            )

    def register_profile(self, profile: ProviderProfile, *, replace: bool = False) -> None:
        """Register a provider that speaks an existing wire family (a new OpenAI-compatible
        host, say) as data."""
        if profile.codec not in FAMILY_MODULES:
            raise ValueError(
                f"unknown wire family {profile.codec!r}; known: {', '.join(FAMILY_MODULES)}"
            )
        with _REGISTER_LOCK:
            self._check_free(profile.name, replace)
            self._entries[profile.name] = _Entry(
                profile.name, profile.codec, profile=profile, capabilities=profile.capabilities
            )

    def unregister(self, name: str) -> None:
        """Forget a provider."""
        with _REGISTER_LOCK:
            self._entries.pop(name, None)

    def _check_free(self, name: str, replace: bool) -> None:
        if name in self._entries and not replace:
            raise ValueError(f"provider {name!r} is already registered; pass replace=True")

    # -- lookup ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Registered provider names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical_name(name) in self._entries

    def canonical_name(self, name: str) -> str:
        """``name``, or the built-in provider it is another spelling of (``aws-bedrock`` is
        ``bedrock``, ``google-vertex`` is ``vertex``). A registered name always wins."""
        if name in self._entries:
            return name
        return ALIASES.get(name, name)

    def profile(self, name: str) -> ProviderProfile | None:
        """The profile of an HTTP provider (``None`` for custom and local providers)."""
        entry = self._entry(name)
        if entry.profile is not None:
            return entry.profile
        if entry.family in FAMILY_MODULES:
            profiles: dict[str, ProviderProfile] = _family(entry.family).PROFILES
            entry.profile = profiles[name]
            return entry.profile
        return None

    def list(self) -> list[ProviderInfo]:
        """Every provider with its capabilities and whether its key is set."""
        from lexigram.ai.llm._userfiles import stored_key

        infos = []
        for name in self.names():
            entry = self._entries[name]
            try:
                profile = self.profile(name)
            except MissingExtraError:
                profile = None
            if profile is not None:
                infos.append(
                    ProviderInfo(
                        name,
                        entry.family,
                        profile.capabilities,
                        profile.api_key_env,
                        any(os.environ.get(v) for v in profile.api_key_env)
                        or stored_key(name, profile.api_key_env) is not None,
                        profile.requires_key,
                        profile.description,
                    )
                )
            else:
                infos.append(
                    ProviderInfo(
                        name,
                        entry.family,
                        entry.capabilities or frozenset({"stream"}),
                        requires_key=False,
                        description="in-process llama.cpp model" if name == LOCAL_PROVIDER else "",
                    )
                )
        return infos

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(self.canonical_name(name))
        if entry is None:
            raise UnknownProviderError(
                f"Unknown LLM provider {name!r}. Registered providers: "
                f"{', '.join(self.names())}. Register your own with "
                f"ProviderRegistry.register(name, client_class)."
            )
        return entry

    # -- building --------------------------------------------------------------------------

    def create(
        self, config: ClientConfig | str | None = None, **policies: Any
    ) -> AbstractLLMClient:
        """A client for ``config`` (a ``ClientConfig``, a ``"provider/model"`` string, or
        ``None`` for the environment's default). A custom provider's client is whatever its
        class or factory built (an ``LLMClientProtocol``)."""
        cfg = ClientConfig.parse(config) if not isinstance(config, ClientConfig) else config
        given = cfg.provider
        name = self.default_provider(cfg) if given is None else self.canonical_name(given)
        if name != given:
            cfg = cfg.model_copy(update={"provider": name})
        entry = self._entry(name)  # an unknown name raises with the list of names
        if entry.factory is not None:
            client = entry.factory(cfg, **policies)
            if not isinstance(client, LLMClientProtocol):
                raise TypeError(
                    f"the factory registered for provider {name!r} returned "
                    f"{type(client).__name__}, which does not satisfy LLMClientProtocol "
                    f"(it needs {', '.join(_PROTOCOL_METHODS)}); subclass AbstractLLMClient"
                )
            return cast(AbstractLLMClient, client)
        if name == LOCAL_PROVIDER:
            from lexigram.ai.llm.providers.local import create_local_client

            return create_local_client(cfg, **policies)
        profile = self.profile(name)
        assert profile is not None
        from lexigram.ai.llm.providers.http import HTTPLLMClient

        return HTTPLLMClient(cfg, profile=profile, codec=_family(entry.family).CODEC, **policies)

    def default_provider(self, config: ClientConfig | None = None) -> str:
        """The provider used when none is configured: ``openai`` when ``config`` carries an
        API key (``ClientConfig(api_key=...)``, ``LEX_AI_LLM__API_KEY``), else the first
        built-in provider whose key is in the environment, else ``local``."""
        if config is not None and config.api_key is not None:
            logger.info(
                "An API key is configured but no LLM provider: using %r. Set "
                "LEX_AI_LLM__PROVIDER (or ClientConfig(provider=...)) to choose another.",
                KEY_DEFAULT_PROVIDER,
            )
            return KEY_DEFAULT_PROVIDER
        for name, family in BUILTIN_PROVIDERS.items():
            if family not in FAMILY_MODULES:
                continue
            try:
                profile = self.profile(name)
            except MissingExtraError:
                continue
            if (
                profile is not None
                and profile.requires_key
                and any(os.environ.get(v) for v in profile.api_key_env)
            ):
                return name
        _log_local_default_once()
        return LOCAL_PROVIDER


_logged_local = False


def _log_local_default_once() -> None:
    global _logged_local
    if not _logged_local:
        _logged_local = True
        logger.info(
            "No LLM provider configured and no provider API key in the environment: using the "
            "embedded local model (provider 'local'). Set LEX_AI_LLM__PROVIDER to choose another."
        )


def _check_client_class(name: str, client: object) -> None:
    """Refuse what cannot build an ``LLMClientProtocol``: a class missing its methods, or
    something that is not callable at all."""
    if isinstance(client, type):
        missing = [m for m in _PROTOCOL_METHODS if not callable(getattr(client, m, None))]
        if missing:
            raise TypeError(
                f"cannot register {client.__name__} as provider {name!r}: it does not satisfy "
                f"LLMClientProtocol (missing {', '.join(missing)}); subclass AbstractLLMClient"
            )
    elif not callable(client):
        raise TypeError(
            f"cannot register {client!r} as provider {name!r}: expected a class satisfying "
            f"LLMClientProtocol or a factory (config, **policies) -> client"
        )


def _family(family: str) -> Any:
    module = FAMILY_MODULES[family]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("lexigram"):
            raise
        raise MissingExtraError(
            f"The {family!r} provider needs an optional dependency ({exc.name}): "
            f"pip install 'lexigram-ai-llm[{family}]'"
        ) from exc


# A handle on the default table (every ``ProviderRegistry()`` is another one).
default_registry = ProviderRegistry()


def create_llm_client(
    config: ClientConfig | str | None = None,
    registry: ProviderRegistry | None = None,
    **policies: Any,
) -> AbstractLLMClient:
    """Build a client: ``create_llm_client("openai/gpt-4o")``,
    ``create_llm_client(ClientConfig(...))``, or ``create_llm_client()`` for the default."""
    return (registry or default_registry).create(config, **policies)
