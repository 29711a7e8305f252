"""The exercises as Jupyter notebooks, for students who work in one (`grade release --notebooks`).

A notebook is built from an exercise's README and stub: the README's introduction, then each
numbered task as its own markdown cell, then the stub as code cells (its header, then one cell
per top-level function or class), then the README's closing sections. Graded back through
`grader.grading.notebook`, the code cells give the stub module again.
"""

from __future__ import annotations

import ast
import re

TASK = re.compile(r"^(\d+)\. ", re.MULTILINE)
TASKS_HEADING = re.compile(r"## [^\n]*\btasks\b", re.IGNORECASE)


def _split_readme(readme: str) -> tuple[str, str, list[str], str]:
    """(introduction, task preamble, tasks, closing) of an exercise README."""
    sections = re.split(r"(?m)^(?=## )", readme)
    intro, tasks_section, closing = [], "", []
    for section in sections:
        if not tasks_section and TASKS_HEADING.match(section):
            tasks_section = section
        elif tasks_section:
            closing.append(section)
        else:
            intro.append(section)
    if not tasks_section:
        return "".join(intro).strip(), "", [], "".join(closing).strip()
    starts = [m.start() for m in TASK.finditer(tasks_section)]
    if not starts:
        return "".join(intro).strip(), tasks_section.strip(), [], "".join(closing).strip()
    bounds = [*starts, len(tasks_section)]
    tasks = [tasks_section[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]
    # Text after the last task (a closing remark of the section) stays with that task.
    return (
        "".join(intro).strip(),
        tasks_section[: starts[0]].strip(),
        tasks,
        "".join(closing).strip(),
    )


def _split_code(source: str) -> list[str]:
    """The stub as cells: everything before the first function or class, then one per
    top-level function or class (with its decorators and the lines up to the next one)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    starts = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            starts.append(first - 1)
    if not starts:
        return [source.rstrip() + "\n"]
    bounds = [0, *starts, len(lines)] if starts[0] > 0 else [*starts, len(lines)]
    cells = ["\n".join(lines[a:b]).strip("\n") for a, b in zip(bounds, bounds[1:], strict=False)]
    return [c for c in cells if c.strip()]


def stub_notebook(readme: str, stub: str, module: str):
    """The notebook (an `nbformat` v4 node) for one exercise's README and stub source."""
    from nbformat import v4

    intro, preamble, tasks, closing = _split_readme(readme)
    cells = [v4.new_markdown_cell(intro)] if intro else []
    if preamble:
        cells.append(v4.new_markdown_cell(preamble))
    cells += [v4.new_markdown_cell(task) for task in tasks]
    cells.append(
        v4.new_markdown_cell(
            f"## Your code\n\nThe code cells of this notebook, in order, are your `{module}`: "
            f"the grader reads them from `{module[:-3]}.ipynb` when there is no `{module}` "
            "beside it (a `.py` file wins), drops IPython magics (`%`, `%%`) and shell lines "
            "(`!`), and grades the rest like a module. Keep the function names and signatures."
        )
    )
    cells += [v4.new_code_cell(code) for code in _split_code(stub)]
    if closing:
        cells.append(v4.new_markdown_cell(closing))
    notebook = v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def notebook_text(readme: str, stub: str, module: str) -> str:
    """The `.ipynb` file's text for one exercise (validated by nbformat)."""
    import nbformat

    notebook = stub_notebook(readme, stub, module)
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"
