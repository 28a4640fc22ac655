"""The Dockerfile and deploy/compose.yaml: well-formed, consistent with each other and
with the CLI they run."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from cluster._cli import parse_command_line
from mlops.cluster import render_manifests
from mlops.config import Settings

SQLITE_ONLY = True

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
_REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each logical line, continuations joined."""
    instructions, pending = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical = pending + line
        pending = ""
        keyword, _, arguments = logical.strip().partition(" ")
        instructions.append((keyword, arguments.strip()))
    assert not pending, "the Dockerfile ends in a line continuation"
    return instructions


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, over ``env``."""

    def value(match: re.Match[str]) -> str:
        name, operator, rest = match.groups()
        if env.get(name):
            return env[name]
        assert operator != ":?", f"${{{name}}} is required: {rest}"
        return rest or ""

    return _REFERENCE.sub(value, text).replace("$$", "$")


def test_dockerfile_instructions_are_known_and_conventional() -> None:
    instructions = dockerfile()
    assert {keyword for keyword, _ in instructions} <= _INSTRUCTIONS
    stages = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert stages == ["python:3.11-slim AS build", "python:3.11-slim"]
    final = instructions[[k for k, _ in instructions].index("FROM", 1) :]
    final_keywords = [keyword for keyword, _ in final]
    assert any(k == "COPY" and a.startswith("--from=build ") for k, a in final)
    (user,) = [arguments for keyword, arguments in final if keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    assert final_keywords.index("USER") < final_keywords.index("CMD")
    assert ("EXPOSE", "8000") in final
    # A numeric id, as Kubernetes' runAsNonRoot needs, and the one the manifests run as.
    deployment = next(m for m in render_manifests() if m["kind"] == "Deployment")
    run_as = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert user == f"{run_as}:{run_as}"


def test_dockerfile_installs_extras_that_exist() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installs = [a for k, a in dockerfile() if k == "RUN" and "pip install" in a]
    (install,) = [a for a in installs if "[" in a]
    (wanted,) = re.findall(r"\[([a-z0-9,]+)\]", install)
    assert wanted.split(",") == ["postgres", "s3", "ui"]
    assert set(wanted.split(",")) <= set(extras)


def test_dockerfile_copies_what_dockerignore_lets_through() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, arguments in dockerfile():
        if keyword == "COPY" and not arguments.startswith("--from"):
            *sources, _ = arguments.split()
            for source in sources:
                assert (REPO / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"


def test_dockerfile_healthcheck_and_cmd() -> None:
    instructions = dict(dockerfile())
    options, _, command = instructions["HEALTHCHECK"].partition(" CMD ")
    assert "--interval=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/health/live" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")
    cmd = json.loads(instructions["CMD"])
    assert cmd == ["mlops", "server", "--host", "0.0.0.0", "--port", "8000"]
    parse_command_line(cmd)


def test_compose_services_and_dependencies_are_consistent() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "minio", "create-bucket", "migrate", "server"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["create-bucket"]["image"].startswith("minio/mc")
    for name, service in services.items():
        for target, dependency in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = dependency["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            else:
                assert condition == "service_completed_successfully"
                assert services[target].get("restart") == "no", f"{target} is not one-shot"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    server_needs = services["server"]["depends_on"]
    assert server_needs["migrate"]["condition"] == "service_completed_successfully"
    assert server_needs["create-bucket"]["condition"] == "service_completed_successfully"
    for name in ("migrate", "server"):  # the image of the repository's Dockerfile
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == REPO / "Dockerfile"


def test_compose_commands_exist_in_the_cli() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["mlops", "db", "upgrade"]
    for name in ("migrate", "server"):
        parse_command_line(services[name]["command"])
    text = (DEPLOY / "compose.yaml").read_text()
    suggested = re.findall(r"exec server (mlops [^\n]+)", text)
    assert suggested
    for command in suggested:
        parse_command_line(shlex.split(command))


def test_compose_variables_come_from_the_env_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    referenced = {match.group(1) for match in _REFERENCE.finditer(text)}
    documented = env_example()
    assert referenced <= set(documented), f"not in .env.example: {referenced - set(documented)}"
    assert set(documented) <= referenced, f"unused: {set(documented) - referenced}"
    for key, value in documented.items():
        if "PASSWORD" in key:
            assert value.startswith("change-me"), f"{key} must be a placeholder"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_server_environment_points_at_the_compose_services() -> None:
    env = env_example()
    resolved = yaml.safe_load(interpolate((DEPLOY / "compose.yaml").read_text(), env))
    services = resolved["services"]
    server_env = services["server"]["environment"]
    database = make_url(server_env["MLOPS_DATABASE_URL"])
    assert (database.host, database.port) == ("postgres", 5432)
    assert database.database == services["postgres"]["environment"]["POSTGRES_DB"]
    assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert database.password == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert services["migrate"]["environment"]["MLOPS_DATABASE_URL"] == str(
        server_env["MLOPS_DATABASE_URL"]
    )
    assert server_env["MLOPS_S3_ENDPOINT_URL"] == "http://minio:9000"
    bucket = services["create-bucket"]["environment"]["MLOPS_BUCKET"]
    assert server_env["MLOPS_ARTIFACT_ROOT"] == f"s3://{bucket}/artifacts"
    minio = services["minio"]["environment"]
    assert server_env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert server_env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    # Every MLOPS_* variable is one mlops reads, with a value it accepts.
    settings = Settings.from_env(
        {k: str(v) for k, v in server_env.items() if k.startswith("MLOPS_")}
    )
    assert settings.auth == "required"
    assert settings.artifact_root == server_env["MLOPS_ARTIFACT_ROOT"]
    assert {k for k in server_env if k.startswith("MLOPS_")} <= {
        "MLOPS_DATABASE_URL",
        "MLOPS_ARTIFACT_ROOT",
        "MLOPS_S3_ENDPOINT_URL",
        "MLOPS_AUTH",
    }
    assert services["server"]["ports"] == ["8000:8000"]
    healthcheck = services["server"]["healthcheck"]["test"]
    assert "/health/live" in healthcheck[-1]
    compile(healthcheck[-1], "healthcheck", "exec")


def test_compose_refuses_to_start_without_passwords() -> None:
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        interpolate((DEPLOY / "compose.yaml").read_text(), {})


def test_commands_and_options_in_the_docs_exist() -> None:
    text = (REPO / "docs" / "cluster.md").read_text()
    commands = [
        command.split(" > ")[0].split("  #")[0]
        for command in re.findall(
            r"^\$ (?:docker compose \S+ \S+ exec server )?mlops ([^\n]+)", text, re.MULTILINE
        )
    ]
    assert len(commands) >= 5
    for command in commands:
        parse_command_line(["mlops", *shlex.split(command)])
    render_flags = set()
    for row in re.findall(r"^\| (`--[^|]+)\|", text, re.MULTILINE):
        render_flags |= set(re.findall(r"`(--[a-z0-9-]+)", row))
    assert "--cpu-target" in render_flags
    for flag in render_flags - {"--output"}:
        parse_command_line(
            ["mlops", "k8s", "render", flag, *([] if "monitoring" in flag else ["1"])]
        )


def test_command_line_check_catches_renamed_flags_and_commands() -> None:
    for argv in (
        ["mlops", "server", "--hots", "0.0.0.0"],
        ["mlops", "db", "upgrayedd"],
        ["mlops", "pipeline", "trigger"],
    ):
        with pytest.raises(Exception, match=r"No such|Missing"):
            parse_command_line(argv)
