"""The commented sample config in systemd/ is a config the daemon accepts."""

from __future__ import annotations

from pathlib import Path

from flink_gitops.settings import load_settings


def test_the_sample_config_loads() -> None:
    sample = Path(__file__).resolve().parents[1] / "systemd" / "config.yaml"
    settings = load_settings(sample)
    assert settings.sync.prune is False
    assert settings.sync.max_prune_fraction == 0.5
    assert settings.artifact_download.max_bytes == 512 * 1024 * 1024
    assert settings.allow_unpinned_artifacts is False
    assert settings.sync.missed_run_grace_s == 600
