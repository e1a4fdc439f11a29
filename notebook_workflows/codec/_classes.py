"""Class names in snapshots: ``"module:Outer.Inner"``, found again without running anything.

Design decisions
----------------
*Loading never imports and never calls what the data names.* ``find_class`` looks a name up
only in modules already in ``sys.modules``, walking the qualified name through the real
``__dict__`` of the module and of each class (read with the slot descriptors of ``module`` and
``type``, so no ``__getattr__`` or metaclass hook of anything named in the data can run), and
accepts only pydantic models, dataclasses, Enums, Events (and what the user ``register``-ed).
Names such as ``os:system`` or ``subprocess:Popen`` are refused before anything is called.

*Classes are found by name each time*, so a class defined in a notebook's ``__main__`` is found
again once its cell has run again; a small cache remembers lookups but checks, on every hit, that
the module still holds the very same object under that name.

*``register`` is the one door for classes that cannot be found by their own name* (defined in
a function, or moved since old snapshots were written). The encoders remember under which name
each class is written; ``register`` tells them to forget (``on_register``).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel

from ..errors import ContextSerdeError
from ..events import Event
from ._paths import short_repr, shown

T = TypeVar("T", bound=type)

# The slot descriptors behind `module.__dict__`, `cls.__dict__` and `cls.__mro__`: reading
# through them cannot be intercepted by a module's __getattr__ or a metaclass, so looking a
# name up runs no code of whatever the name designates.
# (vars(ModuleType) is ModuleType.__dict__, the mapping; type checkers read the latter as the
# instance property.)
_module_dict: Callable[[Any], dict[str, Any]] = vars(types.ModuleType)["__dict__"].__get__
_class_dict = type.__dict__["__dict__"].__get__
_class_mro = type.__dict__["__mro__"].__get__

_KIND_BASES: dict[str, type] = {"model": BaseModel, "enum": Enum, "event": Event}
_KIND_WORDS = {
    "model": "a pydantic model",
    "dataclass": "a dataclass",
    "enum": "an Enum",
    "event": "an Event",
}
VALUE_KINDS = ("model", "dataclass", "enum")

_REGISTRY: dict[str, type] = {}  # name -> class, from register()
REGISTERED_NAMES: dict[type, str] = {}  # class -> the first name it was registered under
# (name, kinds) -> (class, module name, module, attribute): see find_class.
_FOUND: dict[tuple[str, tuple], tuple[type, str, Any, str]] = {}
# Called after every register(): caches keyed by class (the encoders) drop what they know.
on_register: list[Callable[[], None]] = []


def own_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def qualified_name(cls: type) -> str:
    """The name ``cls`` is written under in snapshots: ``"module:Outer.Inner"``.

    A class that cannot be reached by its own module and qualified name (defined in a function)
    but was registered is written under its registered name.
    """
    own = own_name(cls)
    if walk(own) is not cls:
        return REGISTERED_NAMES.get(cls, own)
    return own


def register(cls: T | None = None, *, name: str | None = None) -> Any:
    """Allow ``cls`` to be found by ``name`` (default: its qualified name) when loading.

    For a class that cannot be found through its module (defined inside a function), or to keep
    loading old snapshots after a class moved: ``register(NewPlace, name="old.module:Thing")``.
    Usable as a decorator, with or without ``name``. Only pydantic models, dataclasses and Enums
    can be registered: those are the classes the codec knows how to write.
    """
    if cls is None:
        return lambda c: register(c, name=name)
    if not isinstance(cls, type) or not is_kind(cls, VALUE_KINDS):
        raise TypeError(f"register() takes a pydantic model, dataclass or Enum class, not {cls!r}")
    if name is None:
        name = own_name(cls)
    if not isinstance(name, str) or not name:
        raise TypeError(f"register() needs a non-empty str name, not {name!r}")
    _REGISTRY[name] = cls
    REGISTERED_NAMES.setdefault(cls, name)
    _FOUND.clear()
    for forget in on_register:
        forget()
    return cls


def find_class(name: str, *, kinds: tuple[str | type, ...] = VALUE_KINDS) -> type:
    """The class called ``name`` (``"module:Outer.Inner"``), if it is of one of ``kinds``.

    ``kinds`` holds ``"model"``, ``"dataclass"``, ``"enum"``, ``"event"`` or base classes. Only
    registered classes and modules already in ``sys.modules`` are searched: nothing is imported,
    and nothing the name designates is called. Otherwise ``ContextSerdeError`` says why.
    """
    if type(name) is not str:
        raise ContextSerdeError(f"{short_repr(name)} is not a class name (a 'module:QualName' str)")
    known = _FOUND.get((name, kinds))
    if known is not None:
        cls, module_name, module, attr = known
        # Still the same object under that name? (A re-run notebook cell makes a new class.)
        if sys.modules.get(module_name) is module and _module_dict(module).get(attr) is cls:
            return cls
    registered = _REGISTRY.get(name)
    cls = registered if registered is not None else _find_in_modules(name)
    if not is_kind(cls, kinds):
        wanted = " or ".join(
            _KIND_WORDS.get(k, k) if isinstance(k, str) else f"a {k.__qualname__} subclass"
            for k in kinds
        )
        raise ContextSerdeError(
            f"{shown(name)} is not {wanted}; refusing to load it (only pydantic models, "
            "dataclasses, Enums and registered ones are loaded)"
        )
    module_name, _, qualname = name.partition(":")
    if registered is None and "." not in qualname:
        _FOUND[(name, kinds)] = (cls, module_name, sys.modules[module_name], qualname)
    return cls


def _find_in_modules(name: str) -> type:
    module_name, colon, qualname = name.partition(":")
    if not colon or not module_name or not qualname:
        raise ContextSerdeError(
            f"{short_repr(name)} is not a class name of the form 'module:QualName'"
        )
    class_name = shown(qualname.rpartition(".")[2])
    module = sys.modules.get(module_name)
    if module is None or not issubclass(type(module), types.ModuleType):
        module_text = short_repr(module_name)
        return _missing(
            f"class {class_name} ({shown(name)}) was defined in module "
            f"{module_text}, which is not imported: import {shown(module_name)} (or run the "
            f"cell that defines {class_name}) first; loading never imports modules itself"
        )
    if "<locals>" in qualname:
        return _missing(
            f"class {class_name} ({shown(name)}) was defined inside a function, so "
            f"it cannot be found by name: call notebook_workflows.serialization.register("
            f"{class_name}, name=...) before loading"
        )
    obj = walk(name)
    if obj is None:
        where = (
            "the notebook (or script)"
            if module_name == "__main__"
            else f"module {short_repr(module_name)}"
        )
        return _missing(
            f"class {class_name} ({shown(name)}) was defined in {where}, which has "
            f"no {shown(qualname)} now: run the cell (or code) that defines "
            f"{class_name} first, or register() it"
        )
    if not issubclass(type(obj), type):
        raise ContextSerdeError(
            f"{shown(name)} is not a class (it is a {type(obj).__name__}); refusing to load it"
        )
    return obj


def _missing(message: str) -> type:
    raise ContextSerdeError(message)


def walk(name: str) -> Any:
    """The object at ``module:Outer.Inner`` reached through real ``__dict__``s only, or None."""
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not issubclass(type(module), types.ModuleType):
        return None
    namespace: Any = _module_dict(module)
    obj = None
    for part in qualname.split("."):
        if namespace is None:
            return None
        obj = namespace.get(part)
        if obj is None:
            return None
        # Only a class may be walked into (Outer.Inner); a function's <locals> cannot.
        namespace = _class_dict(obj) if issubclass(type(obj), type) else None
    return obj


def is_kind(cls: type, kinds: tuple) -> bool:
    mro = _class_mro(cls)
    for kind in kinds:
        if kind == "dataclass":
            # What dataclasses.is_dataclass checks, read without calling into the class.
            if any("__dataclass_fields__" in _class_dict(c) for c in mro):
                return True
            continue
        base = _KIND_BASES.get(kind) if isinstance(kind, str) else kind
        # Identity, not ==: a metaclass's __eq__ is code of the class being checked.
        if base is not None and any(c is base for c in mro):
            return True
    return False
