"""What `durabot up` hands its children: exactly the settings it resolved, secrets included."""

from __future__ import annotations


def test_children_get_the_secrets_up_resolved_not_their_masks(tmp_path):
    from pydantic import SecretStr

    from core.settings import Settings
    from durabot.supervisor import Supervisor

    settings = Settings(_env_file=None, var_dir=tmp_path, xai_api_key=SecretStr("xai-secret-value-123"),
                        gateway_port=18080)
    env = Supervisor._child_env(settings)
    assert env["DURABOT_XAI_API_KEY"] == "xai-secret-value-123"
    assert env["DURABOT_GATEWAY_PORT"] == "18080"
    assert "**********" not in env.values()
