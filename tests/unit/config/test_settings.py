from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from netweave.config import ConfigError, load_settings
from netweave.models.ids import default_ocloud_id


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.backend) == ("127.0.0.1", 8080, "simulated")
    assert settings.max_page_size == 100
    assert settings.effective_ocloud_id == default_ocloud_id("netweave-ocloud")
    assert settings.effective_global_cloud_id == settings.effective_ocloud_id
    assert settings.effective_service_uri == "http://127.0.0.1:8080"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    ocloud = str(uuid.uuid4())
    monkeypatch.setenv("NETWEAVE_PORT", "9090")
    monkeypatch.setenv("NETWEAVE_MAX_PAGE_SIZE", "7")
    monkeypatch.setenv("NETWEAVE_OCLOUD_ID", ocloud.upper())
    monkeypatch.setenv("NETWEAVE_GLOBAL_CLOUD_ID", ocloud)
    settings = load_settings()
    assert settings.port == 9090
    assert settings.max_page_size == 7
    assert settings.effective_ocloud_id == ocloud  # normalised
    assert settings.effective_global_cloud_id == ocloud


def test_yaml_file_with_environment_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "netweave.yaml"
    config.write_text("port: 8181\nmax_page_size: 5\nOCLOUD_NAME: edge-west\n")
    monkeypatch.setenv("NETWEAVE_PORT", "8282")
    settings = load_settings(config)
    assert settings.port == 8282
    assert settings.max_page_size == 5
    assert settings.ocloud_name == "edge-west"
    # explicit overrides (command-line options) win over both
    assert load_settings(config, port=8383).port == 8383


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("NETWEAVE_PORT", "eighty", "NETWEAVE_PORT"),
        ("NETWEAVE_PORT", "70000", "NETWEAVE_PORT"),
        ("NETWEAVE_MAX_PAGE_SIZE", "0", "NETWEAVE_MAX_PAGE_SIZE"),
        ("NETWEAVE_BACKEND", "vmware", "NETWEAVE_BACKEND"),
        ("NETWEAVE_OCLOUD_ID", "not-a-uuid", "NETWEAVE_OCLOUD_ID"),
        ("NETWEAVE_SERVICE_URI", "ftp://x", "NETWEAVE_SERVICE_URI"),
        ("NETWEAVE_PROT", "8080", "NETWEAVE_PROT"),
        ("NETWEAVE_KUBECONFIG", "/nonexistent/kubeconfig", "NETWEAVE_KUBECONFIG"),
        ("NETWEAVE_REDIS_URL", "", "NETWEAVE_REDIS_URL"),
    ],
)
def test_invalid_settings_fail_with_one_line_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("port: [1, 2]\n", "NETWEAVE_PORT"),
        ("bogus: 1\n", "NETWEAVE_BOGUS"),
        ("- just\n- a list\n", "mapping"),
        ("port: : :\n", "not valid YAML"),
    ],
)
def test_invalid_yaml_files(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file"):
        load_settings(tmp_path / "absent.yaml")


def test_paging_key_from_file_and_secret_never_shown(tmp_path: Path) -> None:
    key = tmp_path / "paging.key"
    key.write_text("s3cr3t-paging-key\n")
    settings = load_settings(paging_secret_file=key, paging_secret="other")
    assert settings.paging_key() == b"s3cr3t-paging-key"
    assert "other" not in repr(settings)
    random_keys = {load_settings().paging_key() for _ in range(3)}
    assert len(random_keys) == 3
