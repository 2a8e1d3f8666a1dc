"""Dependency injection: a container, providers with a lifecycle, and modules that group them."""

from lexigram.di.container import CircularDependencyError, Container, Key, ResolutionError
from lexigram.di.module import DynamicModule, Module, collect_providers, module
from lexigram.di.provider import Provider

__all__ = [
    "CircularDependencyError",
    "Container",
    "DynamicModule",
    "Key",
    "Module",
    "Provider",
    "ResolutionError",
    "collect_providers",
    "module",
]
