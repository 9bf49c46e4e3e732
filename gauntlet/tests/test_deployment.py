"""docker-compose.yml is valid and wires the production parts together; the served app is tuned.

No Docker engine runs here, so the file is checked with `docker-compose config`, which
parses and validates it against the Compose schema without starting anything.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_and_has_the_production_services(tmp_path):
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is not installed: `make test` installs Debian's package")
    env_file = ROOT / ".env"
    created = not env_file.exists()
    if created:
        env_file.write_text((ROOT / ".env.example").read_text())
    try:
        result = subprocess.run(
            [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    finally:
        if created:
            env_file.unlink()
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {"postgres", "redis", "web", "worker", "beat"} <= services


def test_env_example_documents_every_setting_read_from_the_environment():
    settings_source = (ROOT / "gauntlet" / "settings.py").read_text()
    documented = (ROOT / ".env.example").read_text()
    import re

    names = set(re.findall(r'env_(?:str|bool|int|list)\("([A-Z_]+)"', settings_source))
    missing = sorted(name for name in names if f"{name}=" not in documented)
    assert not missing, f".env.example does not document {missing}"


@pytest.mark.parametrize("module", ["gauntlet.wsgi", "gauntlet.asgi"])
def test_the_served_application_freezes_what_it_loaded_out_of_the_collectors_reach(module):
    code = f"import gc, {module}; print(gc.get_freeze_count())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gauntlet.settings"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                            cwd=ROOT)
    assert int(result.stdout.strip()) > 10_000
