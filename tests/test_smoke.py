from __future__ import annotations


def test_help_lists_core_and_plugin_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0, result
    for name in ("prompt", "run", "config", "plugins", "verify", "transfer", "upscale", "enhance", "demo", "logs",
                 "cancel"):
        assert name in result.stdout


def test_start_up_imports_nothing_heavy(project):
    """paramiko, watchdog, tinydb and the report builder load only in the commands that use them."""
    import subprocess
    import sys

    for args in (["--help"], ["run", "list", "--json"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cosmoskit", *args], cwd=project,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-500:]
        imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        for heavy in ("paramiko", "watchdog", "cosmoskit_ssh.connection", "cosmoskit_report.build", "numpy", "OpenEXR"):
            assert heavy not in imported, f"{heavy} is imported by `cosmoskit {' '.join(args)}`"
        if args == ["--help"]:
            assert "tinydb" not in imported and "yaml" not in imported
