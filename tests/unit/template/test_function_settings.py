"""Each function's environment (as SAM deploys it, Globals merged) holds every variable of the use
cases its handler builds, and nothing else: the handler's bootstrap factories are built in
exactly that environment. The API authorizer gets no table, queue or bucket."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

import pytest
from scrm_sync import bootstrap
from scrm_sync import settings as settings_module
from scrm_sync.settings import EnvSettings, RestoreSettings

from tests.unit.template.sam import ROOT, TEMPLATE

FUNCTIONS = {
    name: resource["Properties"]
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}
GLOBAL_VARIABLES = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
# read by the `scrm` tools, which run with the union of the functions' variables
TOOL_VARIABLES = {"ArchiveOrdersFunction": RestoreSettings.variables() - {"ORDERS_TABLE", "ARCHIVE_BUCKET"}}
ALL_SETTINGS_VARIABLES = frozenset().union(
    *(
        model.variables()
        for model in vars(settings_module).values()
        if isinstance(model, type) and issubclass(model, EnvSettings)
    )
)


def handler_uses(function: str) -> tuple[list[str], list[type[EnvSettings]]]:
    """The bootstrap names the function's handler imports, and the settings models it reads."""
    path = ROOT / FUNCTIONS[function]["CodeUri"] / "app.py"
    tree = ast.parse(path.read_text())
    names = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "scrm_sync.bootstrap"
        for alias in node.names
    ]
    models = [
        getattr(settings_module, node.args[0].id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "settings"
        and node.args
        and isinstance(node.args[0], ast.Name)
    ]
    return names, models


def variable_value(value: Any) -> str:
    """A stand-in for a deployed value: a parameter's default, else a name for the resource."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = TEMPLATE["Parameters"].get(value["Ref"])
        if parameter is not None:
            return str(parameter.get("Default", "x"))
        return f"{value['Ref']}-deployed"
    return str(value) if not isinstance(value, dict) else "deployed-value"


def environment(deployed: dict[str, Any], function: str) -> dict[str, str]:
    resource = deployed["Resources"][function]
    assert resource["Type"] == "AWS::Lambda::Function"
    variables = resource["Properties"].get("Environment", {}).get("Variables", {})
    return {key: variable_value(value) for key, value in variables.items()}


@pytest.fixture
def only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run with exactly these application variables (and a region); records the settings models
    the composition root validates."""
    validated: list[type[EnvSettings]] = []

    def use(variables: dict[str, str]) -> list[type[EnvSettings]]:
        for key in ALL_SETTINGS_VARIABLES:
            monkeypatch.delenv(key, raising=False)
        for key, value in variables.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        bootstrap.reset()

        def record(model: type[EnvSettings]) -> EnvSettings:
            validated.append(model)
            return model.from_env()

        monkeypatch.setattr(bootstrap, "_settings", record)
        return validated

    yield use
    monkeypatch.undo()
    bootstrap.reset()


def build(name: str, models: list[type[EnvSettings]]) -> None:
    """What the handler's bootstrap name builds: a factory, or the document behind rules() and
    credentials(), or (for settings) the models it reads."""
    if name == "settings":
        for model in models:
            bootstrap.settings(model)
    elif name in bootstrap.FACTORIES:
        bootstrap.FACTORIES[name]()
    elif f"{name}_document" in bootstrap.FACTORIES:
        bootstrap.FACTORIES[f"{name}_document"]()
    else:
        raise AssertionError(f"bootstrap.{name} is no factory")


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_function_has_the_variables_of_its_use_cases_and_no_others(function, deployed, only):
    names, models = handler_uses(function)
    assert names, f"{function}'s handler uses no bootstrap factory"
    env = environment(deployed, function)
    validated = only(env)
    for name in names:
        build(name, models)  # MissingSettings names any variable the function lacks
    for model in validated:
        assert model.required_variables() <= set(env), (function, model.__name__)
    read = frozenset().union(*(model.variables() for model in validated))
    unread = set(env) - GLOBAL_VARIABLES - read - TOOL_VARIABLES.get(function, set())
    assert not unread, f"{function} gets variables none of its use cases reads: {sorted(unread)}"


def test_globals_hold_only_what_every_function_reads():
    assert {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "STAGE",
    } == GLOBAL_VARIABLES


def test_the_api_authorizer_gets_no_table_queue_or_bucket(deployed, only):
    env = environment(deployed, "ApiAuthorizerFunction")
    assert set(env) - GLOBAL_VARIABLES == {"CHANNELS_SECRET_ARN", "RULES_CACHE_SECONDS"}
    assert not [key for key in env if key.endswith(("_TABLE", "_QUEUE_URL", "_BUCKET", "_STREAM_NAME"))]
    only(env)
    bootstrap.credentials_document()
    assert bootstrap.client.cache_info().currsize == 0  # no boto3 client: no DynamoDB, SQS or S3


def test_the_scrm_tools_find_their_variables_in_the_stack(deployed, only):
    """`scrm replay|mapping-failures|drift|audit verify|archive restore` run with the union of
    the functions' variables."""
    union: dict[str, str] = {}
    for function in FUNCTIONS:
        union.update(environment(deployed, function))
    only(union)
    for factory in ("replay", "audit", "restore", "schema_registry"):
        assert bootstrap.FACTORIES[factory]() is not None, factory
    hold = TEMPLATE["Parameters"]["ArchiveRestoreHoldDays"]["Default"]
    assert bootstrap.settings(RestoreSettings).archive_restore_hold_days == hold
