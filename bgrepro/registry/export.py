"""torch.export archives (`.pt2`) read without running anything they hold.

`torch.export.load` trusts its file: it unpickles weights, constants and sample inputs (retrying with the
weights-only restriction lifted when the safe load fails), unpickles "opaque" constants with plain `pickle`, loads
AOTInductor shared libraries, hands shape expressions to `sympy.sympify` (which evaluates them), executes
the archive's guard code, and resolves every graph node's target as any attribute path under `torch`
(`torch.os.system` among them), called when the model runs. `load_export` closes each door:

1. the archive is read into memory once (what is checked is what is loaded);
2. members are checked before anything is deserialised: no compiled code (AOTInductor, shared libraries,
   Python), and in its JSON only operator targets of ATen, prims and the control-flow higher-order ops (and
   Python's arithmetic on sizes), shape expressions made of numbers, symbols and sympy's arithmetic, and
   guards that compare input sizes;
3. `torch.export.load` then runs with every unpickling path of the archive reader forced to plain data
   (`torch.load(weights_only=True)`; plain `pickle` and TorchScript object unpickling refused), so a
   member that the checks did not foresee still cannot run code.

Every refusal is one `UnsafeArchive` (a ValueError) naming the archive and the member.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import types
import zipfile
from contextlib import ExitStack
from pathlib import Path
from unittest import mock


class UnsafeArchive(ValueError):
    """A torch.export archive holding something bgrepro does not run (named in the message)."""


#: Graph node targets an archive may name: ATen and prims operators, control-flow higher-order operators, and
#: Python's arithmetic on symbolic sizes.
_OPERATOR = re.compile(r"torch\.ops\.(aten|prims|higher_order)\.[A-Za-z_]\w*(\.[A-Za-z_]\w*)?")
_PYTHON_OPS = {f"_operator.{name}" for name in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "getitem", "eq", "ne", "lt",
    "le", "gt", "ge", "and_", "or_", "not_", "invert")} | {f"math.{name}" for name in (
        "ceil", "floor", "trunc", "sqrt")} | {f"torch.sym_{name}" for name in (
            "max", "min", "float", "int", "not", "ite", "sum", "sqrt")}
#: sympy's names a shape expression may use (besides the symbols themselves, s0, u1, ...).
_SYMPY_NAMES = {
    "Symbol", "Integer", "Rational", "Float", "Max", "Min", "Mod", "Abs", "floor", "ceiling", "Eq", "Ne", "Lt",
    "Le", "Gt", "Ge", "And", "Or", "Not", "oo", "zoo", "nan", "true", "false", "True", "False", "FloorDiv",
    "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift",
    "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat",
    "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "OpaqueUnaryFn_sqrt"}
_SYMBOL = re.compile(r"[a-z]{1,4}\d+")
#: Attributes a guard may read of an input (its sizes), and the calls it may make.
_GUARD_ATTRIBUTES = {"size", "stride", "storage_offset", "dim", "numel", "isnan", "inf"}
#: Archive members that hold compiled code (AOTInductor packages, shared libraries, Python files).
_CODE = re.compile(r"(^|/)aotinductor/|\.(so|dll|dylib|pyd|py|pyc|cpp|c|h)$", re.IGNORECASE)

_ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Add, ast.Sub, ast.Mult,
               ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Eq,
               ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Load)


def _is_shape_expression(text: str) -> bool:
    """Whether a sympy expression string is only numbers, symbols and sympy's arithmetic (so `sympify`, which
    evaluates it, cannot reach anything else)."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, _ARITHMETIC) or isinstance(node, ast.keyword):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str)):
            continue
        if isinstance(node, ast.Name) and (node.id in _SYMPY_NAMES or _SYMBOL.fullmatch(node.id)):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SYMPY_NAMES:
            continue
        return False
    return True


def _is_size_guard(text: str) -> bool:
    """Whether a guard is a comparison of an input's sizes (`L['x'].size()[0] >= 2`): names L and math only,
    subscripts by constants, the size attributes and calls of them."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, _ARITHMETIC):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str)):
            continue
        if isinstance(node, ast.Name) and node.id in ("L", "math"):
            continue
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            continue
        if isinstance(node, ast.Attribute) and node.attr in _GUARD_ATTRIBUTES:
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.keywords:
            continue
        return False
    return True


def _check_json(value, where: str) -> None:
    """Every operator target, shape expression and guard in an archive's JSON member."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                if key == "target" and isinstance(child, str):
                    if not (_OPERATOR.fullmatch(child) or child in _PYTHON_OPS):
                        raise UnsafeArchive(f"{where}: a graph node calls {child[:80]!r}, which is not an operator "
                                            "bgrepro runs (ATen, prims, control flow)")
                elif key == "expr_str" and isinstance(child, str):
                    if not _is_shape_expression(child):
                        raise UnsafeArchive(f"{where}: a shape expression holds code ({child[:80]!r})")
                elif key == "guards_code" and isinstance(child, list):
                    bad = next((g for g in child if not (isinstance(g, str) and _is_size_guard(g))), None)
                    if bad is not None:
                        raise UnsafeArchive(f"{where}: a guard is code, not a size check ({str(bad)[:80]!r})")
                else:
                    stack.append(child)


def check_archive(path: Path, data: bytes) -> dict[str, str]:
    """Check a `.pt2` archive's members (see the module docstring); returns {sha256 of a member: its name},
    which names the member a later refusal comes from."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a torch.export archive ({err})") from None
    digests = {}
    with archive:
        for name in names:
            if _CODE.search(name):
                raise UnsafeArchive(f"{path}: member {name} is compiled or Python code (an AOTInductor package?), "
                                    "which bgrepro never runs; export the model with torch.export.save")
            try:
                body = archive.read(name)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as err:
                raise ValueError(f"{path}: member {name} is unreadable ({err})") from None
            digests[hashlib.sha256(body).hexdigest()] = name
            if name.endswith(".json"):
                try:
                    parsed = json.loads(body)
                except ValueError:
                    raise ValueError(f"{path}: member {name} is not JSON") from None
                _check_json(parsed, f"{path}: member {name}")
    return digests


def load_export(path: Path):
    """The `ExportedProgram` of a `.pt2` archive, loaded so that nothing in it runs (see the module docstring)."""
    import torch
    from torch.export.pt2_archive import _package

    path = Path(path)
    data = path.read_bytes()
    digests = check_archive(path, data)
    real_load = torch.load

    def member(raw) -> str:
        if isinstance(raw, io.BytesIO):
            raw = raw.getvalue()
        return digests.get(hashlib.sha256(bytes(raw)).hexdigest(), "a pickled part") if isinstance(
            raw, (bytes, bytearray)) else "a pickled part"

    def plain_data(f, *args, **kwargs):
        # weights-only whatever the caller asks: torch.export's retry lifts the restriction, this never does
        raw = f.getvalue() if isinstance(f, io.BytesIO) else f
        try:
            return real_load(io.BytesIO(raw) if isinstance(raw, (bytes, bytearray)) else raw,
                             map_location=kwargs.get("map_location"), weights_only=True)
        except Exception as err:  # noqa: BLE001 - every refusal of the safe unpickler
            raise UnsafeArchive(f"{path}: member {member(raw)} holds more than tensors and plain data, which "
                                f"bgrepro never unpickles ({_first_line(err)})") from None

    def refused(raw, *args, **kwargs):
        raise UnsafeArchive(f"{path}: member {member(raw)} is a pickled Python object, which bgrepro never "
                            "unpickles")

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(torch, "load", plain_data))
        stack.enter_context(mock.patch.object(_package, "pickle", types.SimpleNamespace(loads=refused)))
        stack.enter_context(mock.patch.object(torch._C, "_pickle_load_obj", refused))
        try:
            return torch.export.load(io.BytesIO(data))
        except UnsafeArchive:
            raise
        except Exception as err:  # noqa: BLE001 - torch.export's own error types
            cause = err.__context__ if isinstance(err.__context__, UnsafeArchive) else None
            if cause is not None:
                raise cause from None
            raise ValueError(f"{path}: unreadable torch.export archive ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:160]


__all__ = ["UnsafeArchive", "check_archive", "load_export"]
