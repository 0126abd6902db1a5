"""pyproject.toml builds a wheel holding the pure packages (analysis, game_logic, ai_partners with its
prompt files, population with its example grids) and nothing of the oTree project. Built from a copy, so no build/ or egg-info lands in the
checkout; pip fetches setuptools for the isolated build (hence `slow`)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ('analysis', 'game_logic', 'ai_partners', 'population')


@pytest.mark.slow
def test_wheel_holds_the_pure_packages_and_their_data(tmp_path):
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns('__pycache__'))
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(source), '--no-deps', '-q',
                             '--disable-pip-version-check', '-w', str(tmp_path / 'dist')],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (wheel,) = (tmp_path / 'dist').glob('*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(source).as_posix() for package in PACKAGES for p in (source / package).rglob('*')
                if p.is_file() and p.suffix in ('.py', '.txt', '.toml')}
    assert expected <= names, sorted(expected - names)
    assert 'analysis/__main__.py' in names and 'ai_partners/prompts/system.txt' in names
    top_level = {n.split('/')[0] for n in names if not n.split('/')[0].endswith('.dist-info')}
    assert top_level == set(PACKAGES), top_level
