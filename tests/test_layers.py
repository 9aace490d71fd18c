"""Dependencies point one way: data → backends/cache → pipeline → sweep → report → commands.

An import (at module level, inside a function or under ``TYPE_CHECKING``: a type-only import is
still a dependency) from a lower layer to a higher one fails the test. Metrics depends on data
alone and sits beside backends/cache, below the pipeline that scores with it. ``import
lcrp_core`` itself must stay light: no torch, optuna, pandas or matplotlib at import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import lcrp_core

PACKAGE = Path(lcrp_core.__file__).parent

#: layer of each top-level module or subpackage of lcrp_core → the layers it may import
LAYERS = {
    "base": set(),                                          # errors, masks, yamlfile, devices, versions, files, hashing, schema, config
    "data": {"base"},
    "metrics": {"base", "data"},
    "backends": {"base", "data"},
    "cache": {"base", "data", "backends"},
    "pipeline": {"base", "data", "backends", "cache", "metrics"},
    "sweep": {"base", "data", "backends", "cache", "metrics", "pipeline"},
    "report": {"base", "data", "backends", "cache", "metrics", "pipeline", "sweep"},
    "top": {"base", "data", "backends", "cache", "metrics", "pipeline", "sweep", "report", "top"},
}
BASE_MODULES = {"errors", "masks", "yamlfile", "devices", "versions", "files", "hashing", "schema", "config"}
TOP_MODULES = {"api", "cli", "__main__", "commands"}

#: public name of the package → the submodule its lazy ``__getattr__`` takes it from
LAZY_NAMES = {name: module for module, names in lcrp_core._LAZY.items() for name in names}

#: (importing file, imported module) pairs still to be removed; empty it, never grow it.
ALLOWED: set[tuple[str, str]] = set()


def layer_of(module: str) -> str:
    """The layer of ``lcrp_core.<part>[...]``; the package itself (``__version__``) is base."""
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    head = parts[1]
    if head in BASE_MODULES:
        return "base"
    if head in TOP_MODULES:
        return "top"
    if head in LAYERS:
        return head
    raise AssertionError(f"{module}: no layer assigned; add it to tests/test_layers.py")


def resolve(node: ast.ImportFrom | ast.Import) -> list[str]:
    """Absolute lcrp_core modules an import statement loads (``from lcrp_core import x``: the
    submodule x, or the module the package's lazy ``__getattr__`` takes x from)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "lcrp_core"]
    assert node.level == 0, "use absolute imports"
    if node.module is None or node.module.split(".")[0] != "lcrp_core":
        return []
    if node.module != "lcrp_core":
        return [node.module]
    out = []
    for alias in node.names:
        if (PACKAGE / f"{alias.name}.py").is_file() or (PACKAGE / alias.name).is_dir():
            out.append(f"lcrp_core.{alias.name}")
        elif alias.name in LAZY_NAMES:
            out.append(f"lcrp_core.{LAZY_NAMES[alias.name]}")
        else:
            out.append("lcrp_core")
    return out


def imports() -> list[tuple[str, str, int, str]]:
    """(importing module, imported module, line, file) for every lcrp_core import in the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out += [(module, target, node.lineno, str(path.relative_to(PACKAGE.parent)))
                        for target in resolve(node)]
    return out


def test_no_import_goes_from_a_lower_layer_to_a_higher_one():
    found = imports()
    assert len(found) > 100, "the walk found the package's imports"
    bad = []
    for module, target, line, file in found:
        src, dst = layer_of(module), layer_of(target)
        if src != dst and dst not in LAYERS[src] and (file, target) not in ALLOWED:
            bad.append(f"{file}:{line}: {module} ({src}) imports {target} ({dst})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_the_check_catches_an_upward_import(tmp_path):
    node = ast.parse("from lcrp_core.pipeline.params import Params").body[0]
    (target,) = resolve(node)
    assert layer_of("lcrp_core.data.writers") == "data" and layer_of(target) == "pipeline"
    assert "pipeline" not in LAYERS["data"] and "sweep" not in LAYERS["metrics"]
    lazy = ast.parse("from lcrp_core import open_study, __version__").body[0]
    assert [layer_of(m) for m in resolve(lazy)] == ["top", "base"]


def test_import_lcrp_core_stays_light():
    heavy = ["torch", "optuna", "pandas", "matplotlib", "sam2", "open_clip", "scipy", "cv2"]
    code = ("import sys, lcrp_core; lcrp_core.__all__; dir(lcrp_core); "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


PACKAGES = ["lcrp_core", "lcrp_core.backends", "lcrp_core.cache", "lcrp_core.data",
            "lcrp_core.metrics", "lcrp_core.pipeline", "lcrp_core.report", "lcrp_core.sweep"]


def test_every_public_name_resolves_and_is_listed_by_dir():
    import importlib

    for name in PACKAGES:
        package = importlib.import_module(name)
        assert package.__all__, name
        assert set(package.__all__) <= set(dir(package)), name
        for attr in package.__all__:
            assert getattr(package, attr) is not None, f"{name}.{attr}"
    assert lcrp_core.Params is importlib.import_module("lcrp_core.pipeline.params").Params


def test_no_test_file_imports_another_test_file():
    tests = Path(__file__).parent
    bad = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.name}:{node.lineno}: {n}" for n in names
                    if n.startswith("tests.test_") or n.startswith("test_")]
    assert not bad, "shared test code belongs in tests/helpers.py or tests/fixtures.py:\n" + \
        "\n".join(bad)


#: what lcrp_core's modules import from outside (where installed): imported before the check, as
#: some of them set variables of their own (cv2: LD_LIBRARY_PATH, torch's inductor, ...)
THIRD_PARTY = ["numpy", "scipy", "cv2", "PIL", "yaml", "tqdm", "pycocotools.mask", "optuna",
               "matplotlib", "pandas", "torch", "sam2.build_sam", "sam2.sam2_video_predictor",
               "sam2.automatic_mask_generator", "open_clip", "huggingface_hub", "submitit"]


def test_importing_every_module_changes_no_process_setting():
    """No lcrp_core module sets an environment variable or touches the umask at import (reading
    the umask means setting it: not thread-safe, so it is read on first use only)."""
    code = f"""
import importlib, json, os, pkgutil
for name in {THIRD_PARTY!r}:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
calls = []
umask = os.umask
os.umask = lambda mask: calls.append(mask) or umask(mask)
env = dict(os.environ)
import lcrp_core
names = [m.name for m in pkgutil.walk_packages(lcrp_core.__path__, "lcrp_core.")
         if m.name != "lcrp_core.__main__"]
for name in names:
    importlib.import_module(name)
changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
print(json.dumps([len(names), calls, changed]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, calls, changed = json.loads(out.stdout)
    assert count > 60, count                                 # every module was imported
    assert calls == [] and changed == [], f"os.umask calls {calls}, variables set {changed}"
