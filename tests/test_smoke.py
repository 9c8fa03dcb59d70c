from __future__ import annotations


def test_help_lists_core_and_plugin_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0, result
    for name in ("prompt", "run", "config", "plugins", "verify", "transfer", "upscale", "enhance", "demo", "logs", "cancel"):
        assert name in result.stdout
