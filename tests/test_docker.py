"""docker/: no Docker engine runs here, so the images and the compose file are linted (hadolint, the
compose-spec JSON schema) and held to the project's own install scripts and pins."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from schemas import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
BIN = ROOT / ".venv" / "bin"
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
DOCKERFILES = [DOCKER / "Dockerfile.cpu", DOCKER / "Dockerfile.cuda", DOCKER / "label-studio" / "Dockerfile"]


def locked(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_dockerfiles_pass_hadolint():
    proc = subprocess.run([str(BIN / "hadolint"), *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_file_is_valid_compose_spec():
    proc = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DOCKER / "compose.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pipeline_images_install_through_scripts_setup_from_the_lock():
    for name in ("Dockerfile.cpu", "Dockerfile.cuda"):
        text = (DOCKER / name).read_text()
        assert "COPY pyproject.toml uv.lock" in text and re.search(r"^RUN scripts/setup\b", text, re.M), name
        assert "pip install" not in text and "uv pip" not in text, f"{name}: installs around the lock"
        for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):  # every copied path exists
            assert all((ROOT / s).exists() for s in src.split()), f"{name}: COPY {src}"
        # the packages the wheel is built from (so every one the pipeline imports) all go into the image
        for pkg in (*PACKAGES, "configs"):
            assert f"COPY {pkg} ./{pkg}" in text, f"{name} lacks {pkg}/"
    assert "uv sync --frozen" in (ROOT / "scripts" / "setup").read_text()


def test_label_studio_image_and_compose_use_the_scripts_pin():
    version = re.search(r"^label-studio==(\S+)", (ROOT / "scripts" / "label-studio-requirements.txt").read_text(), re.M).group(1)
    assert "COPY scripts/label-studio-requirements.txt" in (DOCKER / "label-studio" / "Dockerfile").read_text()
    assert compose()["services"]["label-studio"]["image"].endswith(f":{version}")


def test_compose_topology_matches_the_cluster_config():
    spec = compose()
    services = spec["services"]
    assert {"prefect-server", "prefect-db", "label-studio", "label-studio-db", "cpu-worker", "gpu-worker", "dask-scheduler"} <= set(services)
    # the Prefect server is the version the pipeline is locked to
    assert services["prefect-server"]["image"] == f"prefecthq/prefect:{locked('prefect')}-python3.11"
    assert "prefect-db:5432" in services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert services["label-studio"]["environment"]["POSTGRE_HOST"] == "label-studio-db"
    # the config the pipeline service runs with names the services that exist
    command = services["pipeline"]["command"]
    config_path = command[command.index("--config") + 1]
    assert config_path.startswith("/opt/emoforge/configs/")
    config = load_config(ROOT / "configs" / Path(config_path).name)
    host = lambda url: re.match(r"\w+://([^:/]+)", url).group(1)  # noqa: E731
    assert host(config.runtime.dask.address) == "dask-scheduler" and config.runtime.task_runner == "dask"
    assert config.runtime.dask.address in services["cpu-worker"]["entrypoint"]
    gpu = services["gpu-worker"]["command"]
    assert gpu[gpu.index("--pool") + 1] == config.runtime.gpu.pool
    assert services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert host(config.review.label_studio.url) == "label-studio" and config.review.enabled
    # one path for the runs everywhere; Label Studio serves its document root, the config's document_root
    for name in ("pipeline", "cpu-worker", "gpu-worker"):
        assert "runs:/data/runs" in services[name]["volumes"]
    assert "runs:/data/runs:ro" in services["label-studio"]["volumes"]
    ls_root = re.search(r"LOCAL_FILES_DOCUMENT_ROOT=(\S+)", (DOCKER / "label-studio" / "Dockerfile").read_text()).group(1)
    assert config.review.label_studio.document_root == ls_root and command[command.index("--out") + 1].startswith(ls_root + "/runs/")
    # the services the pipeline talks to get the API URL and token it reads
    env = services["pipeline"]["environment"]
    assert host(env["PREFECT_API_URL"]) == "prefect-server" and config.review.label_studio.token_env in env


def test_compose_requires_every_secret():
    """No password or token has a default: `docker compose up` stops and names the one missing."""
    text = "\n".join(line for line in (DOCKER / "compose.yaml").read_text().splitlines() if not line.lstrip().startswith("#"))
    secrets = re.findall(r"\$\{([A-Z_]*(?:PASSWORD|TOKEN)[A-Z_]*)([^}]*)\}", text)
    assert {name for name, _ in secrets} == {"LS_TOKEN", "LS_PASSWORD", "LS_DB_PASSWORD", "PREFECT_DB_PASSWORD"}
    assert all(rest.startswith(":?") for _, rest in secrets), secrets
    env = {k: v for k, v in compose()["services"]["label-studio"]["environment"].items()}
    assert "emoforge-admin" not in str(env) and "dev-token" not in (DOCKER / "compose.yaml").read_text()


def test_cuda_image_can_build_tritons_launcher():
    """xgrammar applies its token mask on CUDA through Triton, which compiles a launcher at first use:
    the image needs a C compiler (found through CC) and the headers of the Python it runs."""
    text = (DOCKER / "Dockerfile.cuda").read_text()
    python = re.search(r"EMOFORGE_PYTHON=(python3\.\d+)", text).group(1)
    installs = " ".join(re.findall(r"apt-get install [^\n]*", text))
    assert f"{python}-dev" in installs.split() and "gcc" in installs.split() and "libc6-dev" in installs.split()
    assert re.search(r"\bCC=gcc\b", text)
