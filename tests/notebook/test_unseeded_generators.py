"""Cells that draw from an unseeded global random generator (Python's ``random``, numpy's
legacy ``np.random.*``) hit in a new kernel, and only there: a generator seeded, or whose
state was copied, never passes for fresh entropy (see lifecycle/random_state.py).

Each session is a new Python process (a restarted kernel) with a real IPython shell that
stores its cells in the history, as a kernel does, on a catalog shared by the test; the last
test uses real kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

SESSION = """
import json, sys
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

cells, names = json.loads(sys.argv[1])
shell = InteractiveShell.instance()
shell.display_pub = CapturingDisplayPublisher()
for cell in cells:
    result = shell.run_cell(cell, store_history=True)  # as a kernel runs a notebook's cells
    if not result.success:
        raise SystemExit(f"cell failed: {cell!r}: {result.error_before_exec or result.error_in_exec!r}")
status = [o["data"]["text/plain"].split()[1] for o in shell.display_pub.outputs
          if "taskcache" in o["metadata"]]
print(json.dumps({"status": status, **{name: shell.user_ns[name] for name in names}}))
"""

LOAD = "%load_ext taskcache"
WALK = "%%task walk\nimport random\nsteps = [random.randint(0, 1) for _ in range(20)]"
NEXT = "after = [random.random() for _ in range(3)]"  # a plain cell: continues the generator
NP_DRAW = "%%task draw\nimport numpy as np\nx = np.random.standard_normal(4).tolist()"
NP_NEXT = "np_after = np.random.standard_normal(3).tolist()"


def session(cache: Path, cells: list[str], names: list[str] = (), cwd: Path | None = None
            ) -> dict[str, Any]:
    """Run ``cells`` in a new process on the catalog ``cache``; the status words of the
    %%task cells and the values of ``names`` at the end."""
    env = {**os.environ, "TASKCACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("PYTHONSTARTUP", None)
    done = subprocess.run([sys.executable, "-c", SESSION, json.dumps([cells, list(names)])],
                          env=env, capture_output=True, text=True, timeout=240, cwd=cwd)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout.splitlines()[-1])


def test_an_unseeded_random_cell_hits_in_a_new_kernel_and_leaves_the_generator_as_the_run(cache_dir):
    first = session(cache_dir, [LOAD, WALK, NEXT], ["steps", "after"])
    assert first["status"] == ["miss"]
    second = session(cache_dir, [LOAD, WALK, NEXT], ["steps", "after"])
    assert second["status"] == ["hit"]
    # the hit gives the run's numbers, and the next cell draws what it drew after the run
    assert second["steps"] == first["steps"] and second["after"] == first["after"]


def test_cells_drawing_one_after_another_all_hit(cache_dir):
    """The state a run from fresh entropy leaves is fresh too, so the next cell hits as well."""
    cells = [LOAD, WALK, "%%task more\nmore = random.random()", NEXT]
    first = session(cache_dir, cells, ["steps", "more", "after"])
    second = session(cache_dir, cells, ["steps", "more", "after"])
    assert first["status"] == ["miss", "miss"] and second["status"] == ["hit", "hit"]
    assert second == {**first, "status": ["hit", "hit"]}


def test_seeded_generators_hit_only_the_same_seed_and_never_fresh_entropy(cache_dir):
    def run(seed: int | None) -> dict[str, Any]:
        seeding = [] if seed is None else [f"import random\nrandom.seed({seed})"]
        return session(cache_dir, [LOAD, *seeding, WALK, NEXT], ["steps", "after"])

    one = run(1)
    assert one["status"] == ["miss"]
    two = run(2)
    assert two["status"] == ["miss"] and two["steps"] != one["steps"]
    unseeded = run(None)
    assert unseeded["status"] == ["miss"]  # a seeded record never serves fresh entropy
    assert run(1) == {**one, "status": ["hit"]}  # the same seed: the same numbers, a hit
    assert run(2) == {**two, "status": ["hit"]}
    assert run(None)["status"] == ["hit"]  # and fresh entropy finds its own run
    # a seeded state never matches the fresh-entropy run either
    assert run(3)["status"] == ["miss"]


def test_seeding_before_the_extension_is_loaded_is_not_taken_for_entropy(cache_dir, tmp_path):
    assert session(cache_dir, [LOAD, WALK])["status"] == ["miss"]  # fresh entropy, recorded
    assert session(cache_dir, [LOAD, WALK])["status"] == ["hit"]
    # each seeds its own number: the same seed twice would be a right hit (same state)
    seeded_before = [
        ["import random\nrandom.seed(5)", LOAD, WALK],            # an earlier cell
        ["import random\nrandom.seed(6)\n" + LOAD, WALK],          # the same cell
        ["from random import seed; seed(7)\n" + LOAD, WALK],
        ["x = 1\n" + LOAD, WALK],                                 # code that could have seeded
        ["import seeds_on_import\n" + LOAD, WALK],                # a library seeding on import
    ]
    (tmp_path / "seeds_on_import.py").write_text("import random\nrandom.seed(8)\n")
    for cells in seeded_before:
        assert session(cache_dir, cells, cwd=tmp_path)["status"] == ["miss"], cells
    # comments and standard-library imports before the line are fine
    assert session(cache_dir, ["# setup\nimport os, json\n" + LOAD, WALK])["status"] == ["hit"]


def test_a_copied_or_drawn_state_is_not_fresh_entropy(cache_dir):
    """``random.getstate()`` keeps a copy whose draws could come back; a plain cell's draws
    leave a state taskcache cannot vouch for: both run the cell."""
    session(cache_dir, [LOAD, WALK])
    copied = session(cache_dir, [LOAD, "import random\nst = random.getstate()", WALK,
                                 "random.setstate(st)\nagain = [random.randint(0, 1) for _ in range(20)]"],
                     ["steps", "again"])
    assert copied["status"] == ["miss"] and copied["again"] == copied["steps"]
    drawn = session(cache_dir, [LOAD, "import random\nrandom.random()", WALK])
    assert drawn["status"] == ["miss"]
    # a cell that seeds after drawing leaves a seeded state: the next cell's run is not entropy
    cells = [LOAD, "%%task reseed\nimport random\nx = random.random()\nrandom.seed(9)\ny = random.random()",
             "%%task more\nmore = random.random()"]
    assert session(cache_dir, cells)["status"] == ["miss", "miss"]
    assert session(cache_dir, cells)["status"] == ["hit", "hit"]
    # "more" found random.seed(9) plus one draw, recorded by hash: the same state hits
    assert session(cache_dir, [LOAD, "import random\nrandom.seed(9)\nrandom.random()",
                               "%%task more\nmore = random.random()"])["status"] == ["hit"]


def test_numpy_global_generator_fresh_and_seeded(cache_dir):
    first = session(cache_dir, [LOAD, NP_DRAW, NP_NEXT], ["x", "np_after"])
    second = session(cache_dir, [LOAD, NP_DRAW, NP_NEXT], ["x", "np_after"])
    assert first["status"] == ["miss"] and second == {**first, "status": ["hit"]}

    def seeded(seed: int) -> dict[str, Any]:
        return session(cache_dir, [LOAD, f"import numpy as np\nnp.random.seed({seed})", NP_DRAW, NP_NEXT],
                       ["x", "np_after"])

    one = seeded(1)
    # the first run imported numpy.random itself: it found fresh entropy, not "anything"
    # (a seeded generator was served that run's numbers before)
    assert one["status"] == ["miss"] and one["x"] != first["x"]
    assert seeded(2)["status"] == ["miss"]
    assert seeded(1) == {**one, "status": ["hit"]}
    # numpy.random imported before the extension: a library may have seeded it (numpy 2
    # imports numpy.random on first use, so a bare `import numpy` before would be seen)
    assert session(cache_dir, ["import numpy.random\n" + LOAD, NP_DRAW])["status"] == ["miss"]
    state = "np.random.set_state(np.random.get_state())"  # names a way to copy the state
    assert session(cache_dir, [LOAD, "import numpy as np\n" + state, NP_DRAW])["status"] == ["miss"]


def test_instances_are_values_not_global_state(cache_dir):
    """``np.random.default_rng()`` and ``random.Random()`` draw from their own fresh entropy:
    nothing global changes, so a cell using one stays a hit as before."""
    cell = ("%%task own\nimport random\nimport numpy as np\n"
            "values = [random.Random().random(), float(np.random.default_rng().random())]")
    first = session(cache_dir, [LOAD, "import random\nrandom.seed(1)", cell], ["values"])
    second = session(cache_dir, [LOAD, "import random\nrandom.seed(2)", cell], ["values"])
    assert first["status"] == ["miss"] and second == {**first, "status": ["hit"]}


def test_why_names_a_fresh_generator_against_a_seeded_one(cache_dir):
    why = ["%%capture out\n%taskcache why walk", "why = out.stdout"]
    session(cache_dir, [LOAD, WALK])
    seeded = session(cache_dir, [LOAD, "import random\nrandom.seed(1)", WALK, *why], ["why"])
    assert seeded["status"] == ["miss"]
    lines = seeded["why"].splitlines()
    assert lines == ["walk #2 missed because, compared with #1 (same key):",
                     "  - random generator random: #1 found it unseeded (fresh entropy); "
                     "#2 found it seeded or already drawn from"]
    again = session(cache_dir, [LOAD, "import random\nrandom.seed(2)", WALK, *why], ["why"])
    assert again["why"].splitlines()[1] == (
        "  - random generator random: #2 found it in another state (it was seeded or drawn "
        "from otherwise)")


def kernel_outputs(cache: Path, cells: list[str], cwd: Path, **environ: str) -> list[str]:
    """Run ``cells`` in a real kernel (``random`` is imported before the first cell there):
    each cell's taskcache status and printed text."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    env = {**os.environ, "TASKCACHE_DIR": str(cache), "PYTHONPATH": os.pathsep.join(sys.path),
           **environ}
    env.pop("TASKCACHE_DB_URL", None)
    NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute(env=env)
    return ["".join((out.get("metadata") or {}).get("taskcache", {}).get("status", "")
                    or out.get("text", "") for out in cell.outputs) for cell in nb.cells[1:]]


def test_in_real_kernels_an_unseeded_cell_hits_and_a_seeded_kernel_does_not(cache_dir, tmp_path):
    show = "print(steps, random.random())"
    first = kernel_outputs(cache_dir, [LOAD, WALK, show], tmp_path)
    second = kernel_outputs(cache_dir, [LOAD, WALK, show], tmp_path)
    assert first[0] == "miss" and second[0] == "hit" and second[1] == first[1]
    seeded = kernel_outputs(cache_dir, ["import random\nrandom.seed(4)\n" + LOAD, WALK, show], tmp_path)
    assert seeded[0] == "miss" and seeded[1] != first[1]
    # a startup file of the IPython profile runs before the first cell: it may seed
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-seed.py").write_text("import random\nrandom.seed(4)\n")
    started = kernel_outputs(cache_dir, [LOAD, WALK, show], tmp_path, IPYTHONDIR=str(tmp_path / "ipython"))
    assert started[0] == "miss" and started[1] != first[1]
    assert kernel_outputs(cache_dir, [LOAD, WALK, show], tmp_path)[0] == "hit"
