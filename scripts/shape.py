"""The package's shape in numbers: modules and their lines, folders, the longest functions, the most parameters,
imports inside functions. Run it before and after a restructure and compare.

    python scripts/shape.py [PACKAGE_DIR] [--json]
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path


def measure(root: Path) -> dict:
    modules, functions, inner_imports = {}, [], 0
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(root).as_posix()
        modules[rel] = len(text.splitlines())
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
                params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                functions.append({"name": f"{rel}:{node.name}", "lines": node.end_lineno - node.lineno + 1,
                                  "params": len(params)})
                inner_imports += sum(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(node)
                                     if n is not node and not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    top = [m for m in modules if "/" not in m]
    longest = sorted(functions, key=lambda f: -f["lines"])
    widest = sorted(functions, key=lambda f: -f["params"])
    return {
        "modules": len(modules), "modules_at_top": len(top), "lines": sum(modules.values()),
        "folders": sorted({m.rsplit("/", 1)[0] for m in modules if "/" in m}),
        "largest_modules": sorted(modules.items(), key=lambda kv: -kv[1])[:8],
        "functions": len(functions), "functions_over_50_lines": sum(f["lines"] > 50 for f in functions),
        "longest_functions": [(f["name"], f["lines"]) for f in longest[:8]],
        "functions_over_10_params": sum(f["params"] > 10 for f in functions),
        "most_params": [(f["name"], f["params"]) for f in widest[:5]],
        "imports_inside_functions": inner_imports,
    }


if __name__ == "__main__":
    argv = [a for a in sys.argv[1:] if a != "--json"]
    shape = measure(Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "bgrepro")
    if "--json" in sys.argv:
        print(json.dumps(shape, indent=2))
    else:
        for key, value in shape.items():
            print(f"{key}: {value}")
