"""The SDK builds as a wheel (``python -m build``, as CI does), installs on its own, and
the installed copy imports with only httpx besides the standard library."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdks" / "python"


def test_the_wheel_builds_installs_and_imports(tmp_path: Path):
    # --no-isolation: the venv's setuptools builds it, so the test needs no network.
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(tmp_path / "dist"), str(SDK)],
                   check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("integration_platform-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
    assert "integration_platform/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/"))]
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert [r.split(":", 1)[1].strip() for r in requires] == ["httpx>=0.24,<1"]
    assert "Requires-Python: >=3.9" in metadata

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True, timeout=120)
    probe = ("import integration_platform as sdk, sys; "
             "print(sdk.__file__); print(sdk.__version__); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('integrationos', 'starlette', 'sqlalchemy')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={
        "PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=60)
    assert done.returncode == 0, done.stderr
    where, version, foreign = done.stdout.splitlines()
    assert where.startswith(str(target)) and version == wheel.name.split("-")[1]
    assert foreign == "[]"
