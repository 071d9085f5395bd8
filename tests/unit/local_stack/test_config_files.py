"""The local stack's config files: the functions' config cache is short locally, so an edit of
the rules or channels file applies within seconds instead of RulesCacheSeconds' minute."""

from __future__ import annotations

from pathlib import Path

from scrm_local import cfn_yaml
from scrm_local.config_files import BINDINGS, with_local_cache
from scrm_local.settings import Settings
from scrm_local.template import Template
from scrm_sync.domain.config_documents import CHANNELS, RULES

from tests.fixtures.local_stack.support import settings as fixture_settings

ROOT = Path(__file__).resolve().parents[3]


def app_settings(**overrides: str) -> Settings:
    return Settings(template_path=ROOT / "template.yaml", project_root=ROOT, parameter_overrides=overrides)


def rules_cache_seconds(settings: Settings) -> set[str]:
    document = cfn_yaml.load(settings.template_path)
    template = Template(document, with_local_cache(settings, document))
    return {fn.environment.get("RULES_CACHE_SECONDS", "") for fn in template.functions.values()} - {""}


def test_the_functions_cache_config_for_seconds_locally():
    assert cfn_yaml.load(ROOT / "template.yaml")["Parameters"]["RulesCacheSeconds"]["Default"] == 60  # AWS
    assert rules_cache_seconds(app_settings()) == {"2"}


def test_an_explicit_override_wins():
    assert rules_cache_seconds(app_settings(RulesCacheSeconds="30")) == {"30"}


def test_a_template_without_the_parameter_is_left_alone():
    settings = fixture_settings()
    assert with_local_cache(settings, cfn_yaml.load(settings.template_path)) is settings


def test_files_are_validated_as_the_functions_read_them():
    assert {b.logical_id: b.document for b in BINDINGS} == {
        "ChannelCredentialsSecret": CHANNELS,
        "RulesParameter": RULES,
    }
