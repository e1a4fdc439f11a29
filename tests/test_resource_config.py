"""ResourceConfig: a pydantic model read from a JSON or YAML file, optionally one section of it,
injected like any resource."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated

import pydantic
import pytest

from notebook_workflows import Resource, StartEvent, StopEvent, Workflow, step
from notebook_workflows.errors import WorkflowConfigurationError
from notebook_workflows.resource import ResourceConfig, ResourceManager


class DbConfig(pydantic.BaseModel):
    url: str
    pool: int = 5


class Db:
    def __init__(self, config: DbConfig) -> None:
        self.config = config


CONFIG = {"services": {"db": {"url": "sqlite://", "pool": 2}, "name": "shop"}}


@pytest.fixture
def config_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # relative paths are read from the working directory
    path = tmp_path / "app.json"
    path.write_text(json.dumps(CONFIG))
    return path


def get_db(config: Annotated[DbConfig, ResourceConfig("app.json", "services.db")]) -> Db:
    return Db(config)


class UsesConfig(Workflow):
    @step
    async def go(
        self,
        ev: StartEvent,
        db: Annotated[Db, Resource(get_db)],
        whole: Annotated[DbConfig, ResourceConfig("app.json", "services.db", model=DbConfig)],
    ) -> StopEvent:
        return StopEvent(result=(db.config, db.config is whole))


async def test_a_factory_gets_the_annotated_model_read_from_a_section(config_json: Path) -> None:
    config, same = await UsesConfig().run()
    assert config == DbConfig(url="sqlite://", pool=2)
    assert same  # one read, shared by the factory and the step


async def test_the_file_is_read_once_per_workflow_instance(config_json: Path) -> None:
    workflow = UsesConfig()
    first, _ = await workflow.run()
    config_json.write_text(json.dumps({"services": {"db": {"url": "changed://"}}}))
    again, _ = await workflow.run()
    assert again is first
    fresh, _ = await UsesConfig().run()
    assert fresh.url == "changed://"


async def test_the_annotation_gives_the_model(config_json: Path) -> None:
    config = ResourceConfig(config_json, path_selector="services.db")
    config.set_type_annotation(DbConfig)
    assert await ResourceManager().get(config) == DbConfig(url="sqlite://", pool=2)


async def test_without_a_model_the_error_says_how_to_give_one(config_json: Path) -> None:
    with pytest.raises(WorkflowConfigurationError, match=r"model=YourModel"):
        await ResourceManager().get(ResourceConfig("app.json"))


async def test_a_selector_that_is_not_a_mapping_is_named(config_json: Path) -> None:
    config = ResourceConfig("app.json", "services.name.first", model=DbConfig)
    with pytest.raises(ValueError, match=r"'services.name'.*found a str"):
        await ResourceManager().get(config)
    missing = ResourceConfig("app.json", "services.cache", model=DbConfig)
    with pytest.raises(ValueError, match=r"'services.cache'.*found nothing"):
        await ResourceManager().get(missing)


async def test_a_file_that_does_not_fit_the_model_fails_validation(config_json: Path) -> None:
    config = ResourceConfig("app.json", "services", model=DbConfig)
    with pytest.raises(pydantic.ValidationError):
        await ResourceManager().get(config)


async def test_a_missing_file_is_named(tmp_path: Path) -> None:
    config = ResourceConfig(tmp_path / "nope.json", model=DbConfig)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        await ResourceManager().get(config)


def test_other_file_types_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match=r"\.json, \.yaml or \.yml"):
        ResourceConfig("settings.toml")


async def test_yaml_files_are_read_with_pyyaml(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    config = ResourceConfig(path, "services.db", model=DbConfig)
    assert await ResourceManager().get(config) == DbConfig(url="sqlite://", pool=2)


def test_yaml_without_pyyaml_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "yaml" else real(name, *a)
    )
    with pytest.raises(ImportError, match="pip install pyyaml"):
        ResourceConfig("app.yml")


def test_the_name_is_the_file_and_selector() -> None:
    config = ResourceConfig("app.json", "services.db", label="Database")
    assert config.name == "app.json.services.db" and config.label == "Database"
    assert config.cache is True
