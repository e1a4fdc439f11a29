"""Resource injection: steps ask for clients, configuration and other heavy objects by annotation.

``Annotated[Redis, Resource(get_redis)]`` on a step parameter makes the run call ``get_redis``
(sync or async) and pass the result in. A factory may itself ask for resources the same way
(``def get_db(cfg: Annotated[DbConfig, ResourceConfig("db.json")]) -> Db``); they are made
first, recursively, and a cycle is refused with an error that names it. ``ResourceConfig`` is a
resource read from a JSON (or YAML) file into a pydantic model.

Caching. With ``cache=True`` (the default) a value is made once and shared by every step that
names the same factory, so a client is opened once, not once per event. The values belong to
one ``ResourceManager``, and each workflow instance has its own: resources are never part of a
run's state, never written into snapshots, and are made again after a restore.

Event loops (issue 11). A value made by a factory is cached *per event loop*: made again the
first time a run on another loop asks for it. Async clients (an ``asyncio.Lock``, a queue, an
``httpx.AsyncClient``, ``redis.asyncio``) bind to the loop that first uses them, and
``run_sync`` in a script runs each call on a new loop (``asyncio.run``), so sharing them across
loops fails the second run with "bound to a different event loop". This covers sync factories
too, deliberately: the common ``def get_llm(): return AsyncOpenAI()`` is a sync factory of a
loop-bound client. The cost is one more factory call per new loop, which in a notebook means at
most two (the kernel's loop for ``await w.run()``, the helper loop every ``run_sync`` shares).
Plain data is shared across loops: ``ResourceConfig`` values and values given with
``ResourceManager.set``. Values of a closed loop are dropped when a new loop comes along.

The module path ``resource`` (llama-index-workflows' name) re-exports this one.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
import typing
from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from .errors import WorkflowConfigurationError

# (parameter name, the resource it asks for, the type it is annotated with)
Dependency = tuple[str, "Resource", Any]

_get_running_loop = asyncio.events._get_running_loop  # None outside a loop, without raising


class Resource:
    """Marks a step parameter as injected: ``Annotated[T, Resource(factory, cache=True)]``.

    ``factory`` is called with no arguments except its own resources: parameters annotated
    ``Annotated[T, Resource(...)]`` or ``Annotated[Model, ResourceConfig(...)]``. It may be
    sync or async. ``cache=False`` makes a new value for every use.
    """

    __slots__ = ("_deps", "cache", "factory", "localns")

    def __init__(self, factory: Callable[..., Any], cache: bool = True) -> None:
        if not callable(factory):
            raise TypeError(f"Resource needs a callable factory, got {factory!r}")
        self.factory = factory
        self.cache = cache
        self._deps: tuple[Dependency, ...] | None = None
        # Names the factory's annotations may use besides its module's: the namespace of the
        # code that named this resource (a function defining the workflow, its classes and
        # factories), given by the step that asks for it. Postponed annotations need it.
        self.localns: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The factory's qualified name: how errors and ``get_all()`` refer to it."""
        return getattr(self.factory, "__qualname__", None) or repr(self.factory)

    @property
    def _key(self) -> Any:
        return self.factory  # steps naming the same factory share its value

    _per_loop = True  # see the module docstring

    def get_dependencies(self) -> tuple[Dependency, ...]:
        """The resources the factory asks for: ``(parameter, resource, annotated type)``."""
        if self._deps is None:
            self._deps = _dependencies(self.factory, self.name, self.localns)
            for _, dep, _ in self._deps:
                if dep.localns is None:
                    dep.localns = self.localns
        return self._deps

    def set_type_annotation(self, type_annotation: Any) -> None:
        """Told the annotated type (``T`` in ``Annotated[T, ...]``); a factory needs none."""

    async def _make(self, arguments: dict[str, Any]) -> Any:
        value = self.factory(**arguments)
        if inspect.isawaitable(value):
            value = await value
        return value

    async def resolve(self, manager: ResourceManager) -> Any:
        """Make a value now (its dependencies through ``manager``), bypassing the cache."""
        return await manager._produce(self, {})

    def __repr__(self) -> str:
        return f"Resource({self.name}, cache={self.cache})"


class ResourceConfig(Resource):
    """A pydantic model read from a file: ``Annotated[Settings, ResourceConfig("app.json")]``.

    ``config_file`` is a ``.json`` file, or ``.yaml`` / ``.yml`` when PyYAML is installed;
    ``path_selector`` picks a section inside it by dotted keys (``"services.db"``). The model
    is the annotated type; ``model=`` names it explicitly. ``label`` and ``description`` are
    for display. The file is read when a step first needs it, with ``yaml.safe_load`` or
    ``json.load``, so loading never runs code; the value is always cached and, being plain
    data, shared across event loops.
    """

    __slots__ = ("config_file", "description", "label", "model", "path_selector")

    _SUFFIXES = (".json", ".yaml", ".yml")
    _per_loop = False

    def __init__(
        self,
        config_file: str | PathLike[str],
        path_selector: str | None = None,
        label: str | None = None,
        description: str | None = None,
        *,
        model: type[Any] | None = None,
    ) -> None:
        path = Path(config_file)
        if path.suffix.lower() not in self._SUFFIXES:
            raise ValueError(
                f"ResourceConfig reads .json, .yaml or .yml files; {str(config_file)!r} is none "
                f"of these"
            )
        if path.suffix.lower() != ".json":
            _require_yaml(str(config_file))
        super().__init__(self._read, cache=True)
        self.config_file = str(config_file)
        self.path_selector = path_selector
        self.label = label
        self.description = description
        self.model = model

    @property
    def name(self) -> str:
        if self.path_selector:
            return f"{self.config_file}.{self.path_selector}"
        return self.config_file

    @property
    def _key(self) -> Any:
        # A relative path is read from the working directory of the moment (abspath: no I/O).
        return ("config", os.path.abspath(self.config_file), self.path_selector, self.model)

    def get_dependencies(self) -> tuple[Dependency, ...]:
        return ()

    def set_type_annotation(self, type_annotation: Any) -> None:
        """Use ``type_annotation`` as the model when none was given."""
        if self.model is None and isinstance(type_annotation, type):
            self.model = type_annotation

    def _read(self) -> Any:
        if self.model is None:
            raise WorkflowConfigurationError(
                f"{self!r} does not know which model to load the file into; annotate the "
                f"parameter `Annotated[YourModel, ResourceConfig(...)]` or pass "
                f"ResourceConfig(..., model=YourModel)"
            )
        data = _load_file(Path(self.config_file))
        walked: list[str] = []
        for key in self.path_selector.split(".") if self.path_selector else ():
            walked.append(key)
            section = data.get(key) if isinstance(data, dict) else None
            if not isinstance(section, dict):
                found = "nothing" if section is None else f"a {type(section).__name__}"
                raise ValueError(
                    f"{self.config_file}: path_selector {self.path_selector!r} expects a "
                    f"mapping at {'.'.join(walked)!r}, but found {found} there"
                )
            data = section
        validate = getattr(self.model, "model_validate", None)
        if validate is None:
            raise WorkflowConfigurationError(
                f"{self!r}: the model {self.model!r} is not a pydantic model"
            )
        try:
            return validate(data)
        except Exception as exc:
            note = f"while loading {self.name} into {self.model.__name__}"
            if hasattr(exc, "add_note"):
                exc.add_note(note)
            raise

    def __repr__(self) -> str:
        selector = f", path_selector={self.path_selector!r}" if self.path_selector else ""
        return f"ResourceConfig({self.config_file!r}{selector})"


def _require_yaml(config_file: str) -> None:
    import importlib.util

    if importlib.util.find_spec("yaml") is None:
        raise ImportError(
            f"ResourceConfig({config_file!r}) is a YAML file, and reading YAML needs PyYAML: "
            f"pip install pyyaml (or use a .json file)"
        )


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(
            f"ResourceConfig: no such file {str(path)!r} (relative paths are read from "
            f"{Path.cwd()})"
        )
    with path.open(encoding="utf-8") as f:
        if path.suffix.lower() == ".json":
            import json  # not needed by `import notebook_workflows`: loaded on first use

            return json.load(f)
        import yaml

        return yaml.safe_load(f)


def _dependencies(
    factory: Callable[..., Any], name: str, localns: dict[str, Any] | None = None
) -> tuple[Dependency, ...]:
    """Read the factory's signature: which parameters are resources. A required parameter that
    is not one is refused here, naming it, rather than as a TypeError at call time."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: takes nothing of ours
        return ()
    target: Any = factory
    if isinstance(factory, functools.partial):
        target = factory.func
    elif isinstance(factory, type):
        target = target.__init__  # (target is the class, typed Any: mypy refuses cls.__init__)
    elif not (inspect.isfunction(factory) or inspect.ismethod(factory)):
        target = type(factory).__call__  # a callable object: its __call__ has the hints
    try:
        hints = typing.get_type_hints(target, localns=localns, include_extras=True)
    except Exception:  # an annotation that names something undefined: read them one by one
        hints = {}
    deps: list[Dependency] = []
    for param in params.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, param.annotation)
        resource = _resource_in(annotation)
        if resource is not None:
            deps.append((param.name, resource, get_args(annotation)[0]))
        elif param.default is param.empty:
            raise WorkflowConfigurationError(
                f"resource factory {name} needs an argument for its parameter {param.name!r}, "
                f"which is not a resource; give it a default, or annotate it "
                f"`Annotated[T, Resource(factory)]` so it is made and passed in"
            )
    return tuple(deps)


def _resource_in(annotation: Any) -> Resource | None:
    if get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, Resource):
                return meta
    return None


class ResourceManager:
    """The resources one workflow instance has made.

    The runtime asks ``cached(resource)`` first (no await when the value is made) and
    ``await get(resource)`` otherwise; ``await resolve(resources)`` makes several in one scope.
    ``await set(name, value)`` gives the value to use for the resource of that name (its
    factory's qualified name, or a config's file name), handy in tests; ``get_all()`` lists
    what is made, by name. See the module docstring for caching and event loops.
    """

    def __init__(self) -> None:
        self.resources: dict[str, Any] = {}  # given with set(), by name
        self._shared: dict[Any, Any] = {}  # values made once for every loop
        self._by_loop: dict[Any, dict[Any, Any]] = {}  # loop -> values made on it
        self._names: dict[Any, str] = {}  # key -> name, for get_all()
        self._pending: dict[tuple[Any, Any], asyncio.Future[Any]] = {}
        self._checked: set[Any] = set()  # keys whose dependency graph has no cycle
        self._lock = threading.Lock()

    # -- what the runtime calls -----------------------------------------------------------------

    def cached(self, resource: Resource) -> tuple[bool, Any]:
        """``(True, value)`` when the value is already made, so no await is needed."""
        if not resource.cache:
            return False, None
        if self.resources and resource.name in self.resources:
            return True, self.resources[resource.name]
        values = self._values(resource, create=False)
        if values is not None:
            key = resource._key
            if key in values:
                return True, values[key]
        return False, None

    async def get(self, resource: Resource) -> Any:
        """Make (or reuse) the value, its dependencies first; two steps asking at once share
        one factory call."""
        return await self._get(resource, {})

    async def resolve(self, resources: Iterable[Resource]) -> list[Any]:
        """Make several values in one scope (a step's resources): a ``cache=False`` resource
        that several of them depend on is made once for the lot."""
        scope: dict[Any, Any] = {}
        return [await self._get(r, scope) for r in resources]

    def clear(self) -> None:
        """Forget every value made (not those given with ``set``)."""
        with self._lock:
            self._shared.clear()
            self._by_loop.clear()

    # -- the peer's interface -------------------------------------------------------------------

    async def set(self, name: str, val: Any) -> None:
        """Use ``val`` for the (cached) resource called ``name`` from now on."""
        self.resources[name] = val

    def get_all(self) -> dict[str, Any]:
        """Every value made for the current event loop (and the shared ones), by name."""
        out: dict[str, Any] = {}
        loop = _get_running_loop()
        with self._lock:
            for values in (self._shared, self._by_loop.get(loop, {})):
                out.update((self._names.get(k, repr(k)), v) for k, v in values.items())
        out.update(self.resources)
        return out

    # -- inside ---------------------------------------------------------------------------------

    def _values(self, resource: Resource, create: bool) -> dict[Any, Any] | None:
        if not resource._per_loop:
            return self._shared
        loop = _get_running_loop()
        values = self._by_loop.get(loop)
        if values is None and create:
            with self._lock:
                for old in [lp for lp in self._by_loop if lp is not None and lp.is_closed()]:
                    del self._by_loop[old]  # a finished asyncio.run: its values are dead
                values = self._by_loop.setdefault(loop, {})
        return values

    async def _get(self, resource: Resource, scope: dict[Any, Any]) -> Any:
        key = resource._key
        if key not in self._checked:
            check_acyclic(resource, ())
            self._checked.add(key)
        if not resource.cache:
            if key in scope:
                return scope[key]
            value = scope[key] = await self._produce(resource, scope)
            return value
        found, value = self.cached(resource)
        if found:
            return value
        loop = asyncio.get_running_loop()
        pending_key = (loop if resource._per_loop else None, key)
        pending = self._pending.get(pending_key)
        if pending is not None and pending.get_loop() is loop:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[pending_key] = future
        try:
            value = await self._produce(resource, scope)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: the caller re-raises it
            raise
        finally:
            if self._pending.get(pending_key) is future:
                del self._pending[pending_key]
        values = self._values(resource, create=True)
        assert values is not None
        with self._lock:
            values[key] = value
            self._names[key] = resource.name
        future.set_result(value)
        return value

    async def _produce(self, resource: Resource, scope: dict[Any, Any]) -> Any:
        arguments: dict[str, Any] = {}
        for param, dep, annotated in resource.get_dependencies():
            dep.set_type_annotation(annotated)
            arguments[param] = await self._get(dep, scope)
        return await resource._make(arguments)


def check_acyclic(resource: Resource, path: tuple[Resource, ...]) -> None:
    """Refuse a resource that depends on itself, directly or through others, naming the cycle."""
    keys = [r._key for r in path]
    if resource._key in keys:
        cycle = [*path[keys.index(resource._key) :], resource]
        raise WorkflowConfigurationError(
            "resources depend on each other in a cycle: "
            + " -> ".join(r.name for r in cycle)
            + "; a factory cannot need its own value, directly or through other resources"
        )
    for _, dep, _ in resource.get_dependencies():
        check_acyclic(dep, (*path, resource))


ResourceCache = ResourceManager  # the name the runtime has used


__all__ = ["Resource", "ResourceCache", "ResourceConfig", "ResourceDefinition", "ResourceManager"]


class ResourceDefinition(BaseModel):
    """A step parameter's resource, as llama-index-workflows describes it: the parameter's
    ``name``, its ``resource`` and the type its annotation gives (``type_annotation``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    resource: Any
    type_annotation: Any = None
