"""Bundled executor plugin: GPU hosts over SSH (paramiko), the model in Docker, direct or the emulator.

paramiko is imported only when an SSH host is used, so other commands stay fast.
"""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_executors(register):
    from cosmoskit_ssh.executor import SSHExecutor

    register(SSHExecutor)


@cosmoskit.hookimpl
def register_commands(app):
    from cosmoskit_ssh import commands

    commands.register(app)
