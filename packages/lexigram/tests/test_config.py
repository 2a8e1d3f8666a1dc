from __future__ import annotations

import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, Field, ValidationError

from lexigram.config import ConfigError, ConfigSource, SectionSettings
from lexigram.validation import SecretStr, mask_secret


class ThinkingSettings(BaseModel):
    suppress: bool = False
    budget_tokens: int = 10000


class LLMSettings(SectionSettings):
    __section__: ClassVar[str] = "ai_llm"

    provider: str = "local"
    model: str | None = None
    api_key: SecretStr | None = None
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int | None = None
    thinking: ThinkingSettings = Field(default_factory=ThinkingSettings)
    stop: list[str] = Field(default_factory=list)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- precedence ---------------------------------------------------------------------------


def test_defaults_when_nothing_is_configured() -> None:
    settings = LLMSettings()

    assert settings.provider == "local"
    assert settings.temperature == 0.7
    assert settings.thinking == ThinkingSettings()


def test_yaml_in_working_directory_beats_defaults(isolated_config: Path) -> None:
    write(
        isolated_config,
        "application.yaml",
        """
        ai_llm:
          provider: openai
          temperature: 0.3
          thinking:
            budget_tokens: 500
        other_section:
          temperature: 1.9
        """,
    )

    settings = LLMSettings()

    assert (settings.provider, settings.temperature) == ("openai", 0.3)
    assert settings.thinking == ThinkingSettings(budget_tokens=500)


def test_environment_beats_yaml(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated_config, "application.yaml", "ai_llm: {temperature: 0.3, provider: openai}")
    monkeypatch.setenv("LEX_AI_LLM__TEMPERATURE", "0.2")

    settings = LLMSettings()

    assert settings.temperature == 0.2
    assert settings.provider == "openai"


def test_explicit_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEX_AI_LLM__TEMPERATURE", "0.2")
    monkeypatch.setenv("LEX_AI_LLM__MODEL", "from-env")

    settings = LLMSettings(model="explicit")

    assert settings.model == "explicit"
    assert settings.temperature == 0.2


def test_environment_nests_with_double_underscore(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(isolated_config, "application.yaml", "ai_llm: {thinking: {suppress: true}}")
    monkeypatch.setenv("LEX_AI_LLM__THINKING__BUDGET_TOKENS", "5")

    settings = LLMSettings()

    assert settings.thinking == ThinkingSettings(suppress=True, budget_tokens=5)


def test_environment_accepts_json_for_list_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEX_AI_LLM__STOP", '["END", "STOP"]')

    assert LLMSettings().stop == ["END", "STOP"]


def test_config_dir_comes_from_lex_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    write(config_dir, "application.yaml", "ai_llm: {model: from-config-dir}")
    monkeypatch.setenv("LEX_CONFIG_DIR", str(config_dir))

    assert LLMSettings().model == "from-config-dir"


def test_profile_file_is_merged_over_base_file(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        isolated_config,
        "application.yaml",
        """
        ai_llm:
          provider: openai
          model: gpt-base
          thinking: {suppress: true, budget_tokens: 100}
        """,
    )
    write(
        isolated_config,
        "application.prod.yaml",
        "ai_llm: {model: gpt-prod, thinking: {budget_tokens: 7}}",
    )
    monkeypatch.setenv("LEX_PROFILE", "prod")

    settings = LLMSettings()

    assert (settings.provider, settings.model) == ("openai", "gpt-prod")
    assert settings.thinking == ThinkingSettings(suppress=True, budget_tokens=7)


def test_load_uses_the_given_source_under_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "elsewhere"
    config_dir.mkdir()
    write(config_dir, "application.yaml", "ai_llm: {model: from-file, temperature: 0.1}")
    monkeypatch.setenv("LEX_AI_LLM__TEMPERATURE", "0.9")

    from_path = LLMSettings.load(config_dir)
    from_dict = LLMSettings.load({"ai_llm": {"model": "from-dict", "temperature": 0.4}})
    explicit = LLMSettings.load(config_dir, temperature=1.5)

    assert (from_path.model, from_path.temperature) == ("from-file", 0.9)
    assert (from_dict.model, from_dict.temperature) == ("from-dict", 0.9)
    assert (explicit.model, explicit.temperature) == ("from-file", 1.5)


def test_load_accepts_a_config_source_with_its_own_environment(tmp_path: Path) -> None:
    write(tmp_path, "custom.yaml", "ai_llm: {model: from-file, max_tokens: 10}")
    source = ConfigSource(
        tmp_path / "custom.yaml",
        environ={"LEX_AI_LLM__MAX_TOKENS": "20"},
        overrides={"ai_llm": {"provider": "anthropic"}},
    )

    settings = LLMSettings.load(source)

    assert (settings.model, settings.max_tokens, settings.provider) == (
        "from-file",
        20,
        "anthropic",
    )


def test_fields_set_are_only_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEX_AI_LLM__TEMPERATURE", "0.2")

    settings = LLMSettings(model="x", provider="local")  # "local" is also the default

    assert settings.model_fields_set == {"model", "provider"}
    assert settings == LLMSettings.load(model="x")  # equality is by value


# --- ConfigSource -------------------------------------------------------------------------


def test_section_names_and_keys_from_environment_are_lower_cased() -> None:
    source = ConfigSource(
        environ={
            "LEX_AI_LLM__TEMPERATURE": "0.2",
            "LEX_AI_LLM__THINKING__BUDGET_TOKENS": "5",
            "LEX_CACHE__BACKEND": "redis",
            "LEX_PROFILE": "dev",
            "LEX_NO_NESTING": "ignored",
            "OTHER__KEY": "ignored",
        }
    )

    assert source.section("ai_llm") == {"temperature": "0.2", "thinking": {"budget_tokens": "5"}}
    assert source.section("cache") == {"backend": "redis"}
    assert source.section("missing") == {}
    assert set(source.to_dict()) == {"ai_llm", "cache"}


def test_overrides_sit_between_yaml_and_environment(tmp_path: Path) -> None:
    write(tmp_path, "application.yaml", "db: {host: yaml-host, port: 1, name: app}")

    source = ConfigSource(
        tmp_path,
        environ={"LEX_DB__PORT": "3"},
        overrides={"db": {"host": "override-host", "port": 2}},
    )

    assert source.section("db") == {"host": "override-host", "port": "3", "name": "app"}


def test_interpolation_uses_environment_and_defaults(tmp_path: Path) -> None:
    write(
        tmp_path,
        "application.yaml",
        """
        db:
          url: postgres://${DB_USER}@${DB_HOST:-localhost}:${DB_PORT:-5432}/app
          hosts: ["${DB_HOST:-localhost}"]
        """,
    )

    source = ConfigSource(tmp_path, environ={"DB_USER": "ada", "DB_PORT": "6000"})

    assert source.section("db") == {
        "url": "postgres://ada@localhost:6000/app",
        "hosts": ["localhost"],
    }


def test_missing_interpolated_variable_names_variable_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "application.yaml", "ai_llm: {api_key: '${OPENAI_KEY}'}")

    with pytest.raises(ConfigError) as caught:
        ConfigSource(tmp_path, environ={})

    message = str(caught.value)
    assert "OPENAI_KEY" in message
    assert str(path) in message
    assert "ai_llm.api_key" in message


def test_profile_argument_and_missing_files_are_fine(tmp_path: Path) -> None:
    write(tmp_path, "application.test.yaml", "app: {debug: true}")

    assert ConfigSource(tmp_path, profile="test", environ={}).section("app") == {"debug": True}
    assert ConfigSource(tmp_path, profile="other", environ={}).section("app") == {}


def test_nonexistent_config_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does-not-exist"):
        ConfigSource(tmp_path / "does-not-exist")


def test_invalid_yaml_reports_the_position_without_quoting_the_line(tmp_path: Path) -> None:
    write(tmp_path, "application.yaml", "ai_llm:\n  api_key: [sk-live-0123456789abcdef\n")

    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+, column \d+") as caught:
        ConfigSource(tmp_path, environ={})

    assert "0123456789" not in str(caught.value)


def test_a_section_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "application.yaml", "ai_llm: 3")

    with pytest.raises(ConfigError, match="'ai_llm' must be a mapping"):
        ConfigSource(tmp_path, environ={})


def test_from_any_accepts_each_kind_of_config(tmp_path: Path) -> None:
    write(tmp_path, "application.yaml", "app: {name: from-dir}")
    write(tmp_path, "single.yaml", "app: {name: from-file}")
    existing = ConfigSource(environ={})

    assert ConfigSource.from_any(None).section("app") == {"name": "from-dir"}  # cwd
    assert ConfigSource.from_any(str(tmp_path)).section("app") == {"name": "from-dir"}
    assert ConfigSource.from_any(tmp_path / "single.yaml").section("app") == {"name": "from-file"}
    assert ConfigSource.from_any({"app": {"x": 1}}).section("app") == {"name": "from-dir", "x": 1}
    assert ConfigSource.from_any(existing) is existing
    with pytest.raises(TypeError):
        ConfigSource.from_any(42)  # type: ignore[arg-type]


def test_section_returns_a_copy() -> None:
    source = ConfigSource(overrides={"app": {"tags": ["a"]}}, environ={})

    source.section("app")["tags"].append("b")

    assert source.section("app") == {"tags": ["a"]}


# --- errors and secrets -------------------------------------------------------------------


def test_invalid_value_names_section_key_value_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEX_AI_LLM__TEMPERATURE", "5")

    with pytest.raises(ConfigError) as caught:
        LLMSettings()

    error = caught.value
    assert isinstance(error, ValueError)
    assert not isinstance(error, ValidationError)
    assert "'ai_llm'" in str(error)
    assert "temperature = '5': Input should be less than or equal to 2" in str(error)
    assert error.section == "ai_llm"
    assert [(issue.key, issue.value) for issue in error.issues] == [("temperature", "'5'")]


def test_several_invalid_values_are_listed_one_per_line(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(isolated_config, "application.yaml", "ai_llm: {thinking: {budget_tokens: lots}}")
    monkeypatch.setenv("LEX_AI_LLM__MAX_TOKENS", "many")

    with pytest.raises(ConfigError) as caught:
        LLMSettings(temperature=-1)

    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("invalid configuration in section 'ai_llm'")
    assert any(line.strip().startswith("temperature = -1:") for line in lines)
    assert any(line.strip().startswith("max_tokens = 'many':") for line in lines)
    assert any(line.strip().startswith("thinking.budget_tokens = 'lots':") for line in lines)


def test_invalid_secret_value_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    class KeyedSettings(SectionSettings):
        __section__: ClassVar[str] = "svc"
        api_key: SecretStr = Field(min_length=40)
        access_token: str = Field("", max_length=3)

    monkeypatch.setenv("LEX_SVC__API_KEY", "sk-live-0123456789abcdef")
    monkeypatch.setenv("LEX_SVC__ACCESS_TOKEN", "tok-9876543210-secret")

    with pytest.raises(ConfigError) as caught:
        KeyedSettings()

    message = str(caught.value)
    assert "sk-live-0123456789abcdef" not in message
    assert "tok-9876543210-secret" not in message
    assert f"api_key = '{mask_secret('sk-live-0123456789abcdef')}'" in message
    assert "access_token = '***...cret'" in message


def test_missing_required_value_does_not_echo_other_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class RequiredSettings(SectionSettings):
        __section__: ClassVar[str] = "svc"
        url: str
        api_key: SecretStr | None = None

    monkeypatch.setenv("LEX_SVC__API_KEY", "sk-live-0123456789abcdef")

    with pytest.raises(ConfigError) as caught:
        RequiredSettings()

    assert "url: Field required" in str(caught.value)
    assert "0123456789" not in str(caught.value)


def test_secrets_do_not_appear_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEX_AI_LLM__API_KEY", "sk-live-0123456789abcdef")

    settings = LLMSettings()

    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "sk-live-0123456789abcdef"
    assert "0123456789" not in repr(settings)
    assert "0123456789" not in str(settings)


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk-proj-abcdefghijkl1234", "***...1234"),
        ("123456789012", "***...9012"),
        ("12345678901", "***"),
        ("", "***"),
    ],
)
def test_mask_secret_shows_at_most_the_last_four_characters(secret: str, masked: str) -> None:
    assert mask_secret(secret) == masked
