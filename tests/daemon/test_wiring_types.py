"""The composition root is typed with our own types (issue 13): every annotation in daemon/wiring*.py resolves,
the ones behind `if TYPE_CHECKING:` too (no type checker runs in CI, so a misspelt name would go unseen),
and no parameter or return is a bare `Any`."""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WIRING = sorted(p.stem for p in (REPO / "daemon").glob("wiring*.py"))


def namespace_with_type_only_imports(module: object) -> dict:
    """The module's globals plus what its `if TYPE_CHECKING:` block imports."""
    tree = ast.parse(inspect.getsource(module))
    names = dict(vars(module))
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            exec(compile(ast.Module(body=node.body, type_ignores=[]), "<type-only>", "exec"), names)  # noqa: S102
    return names


def functions_of(module: object) -> list[tuple[str, object]]:
    """Every function and method defined in the module, by qualified name."""
    out = []
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            out.append((name, obj))
        elif inspect.isclass(obj):
            out += [(f"{name}.{m}", f) for m, f in vars(obj).items() if inspect.isfunction(f)]
    return out


@pytest.mark.parametrize("stem", WIRING)
def test_wiring_annotations_resolve_and_say_what_they_are(stem: str) -> None:
    module = importlib.import_module(f"daemon.{stem}")
    names = namespace_with_type_only_imports(module)
    bare_any = []
    for qualname, fn in functions_of(module):
        hints = typing.get_type_hints(fn, globalns=names)  # NameError here: an annotation names nothing
        bare_any += [f"{qualname}: {arg}" for arg, hint in hints.items()
                     if hint is typing.Any and not qualname.endswith("__getattr__")]
    assert not bare_any, f"daemon/{stem}.py annotates our values as Any:\n" + "\n".join(bare_any)


def test_the_check_sees_a_misspelt_type_only_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "typed_probe.py").write_text(
        "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ledger.budget import Budget\n\n"
        "def ok(b: Budget) -> None: ...\n\ndef bad(b: Budjet) -> None: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("typed_probe")
    names = namespace_with_type_only_imports(module)
    assert typing.get_type_hints(module.ok, globalns=names)["b"].__name__ == "Budget"
    with pytest.raises(NameError):
        typing.get_type_hints(module.bad, globalns=names)
