"""lexigram: the small core the lexigram packages stand on.

``lexigram`` is shared by several distributions (``lexigram-contracts``, ``lexigram-cache``,
``lexigram-ai-llm``...), so its ``__path__`` is extended to every ``lexigram`` folder on
``sys.path``; that keeps editable and regular installs working side by side.
"""

from __future__ import annotations

from pkgutil import extend_path
from typing import TYPE_CHECKING, Any

__path__ = extend_path(__path__, __name__)

if TYPE_CHECKING:
    from lexigram.application import Application as Application
    from lexigram.result import Err as Err
    from lexigram.result import Ok as Ok
    from lexigram.result import Result as Result

__all__ = ["Application", "Err", "Ok", "Result"]


def __getattr__(name: str) -> Any:
    # Lazy so that ``import lexigram.result`` does not pull in the DI and config machinery.
    if name == "Application":
        from lexigram.application import Application

        return Application
    if name in {"Ok", "Err", "Result"}:
        from lexigram import result

        return getattr(result, name)
    raise AttributeError(f"module 'lexigram' has no attribute {name!r}")
