"""Cell analysis: inputs, outputs, definitions, result, normalized source, free names."""

from __future__ import annotations

import pytest

from taskcache.analysis import (
    analyze_cell,
    free_names,
    function_seeds,
    normalize_source,
    sink_names,
)


def io(source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    a = analyze_cell(source)
    return a.inputs, a.outputs


@pytest.mark.parametrize(
    ("source", "inputs", "outputs"),
    [
        ("x = 1", (), ("x",)),
        ("y = x * 2", ("x",), ("y",)),
        ("x = x + 1", ("x",), ("x",)),
        ("a += 1", ("a",), ("a",)),
        ("a = 1\na += 1", (), ("a",)),
        ("b = a\na = 2", ("a",), ("b", "a")),
        ("a, (b, *c) = t", ("t",), ("a", "b", "c")),
        ("del x", ("x",), ()),
        ("x = 1\ndel x\nprint(x)", ("print", "x"), ("x",)),
        ('df["x"] = 1', ("df",), ()),
        ("obj.attr = 2", ("obj",), ()),
        ("obj.a.b[i] += 1", ("obj", "i"), ()),
        ("lst.append(v)", ("lst", "v"), ()),
        ("x: int = 5", ("int",), ("x",)),
        ("x: int", ("int",), ()),
        ("len(data)", ("len", "data"), ()),  # builtins are not filtered here
        ("(n := 10)\nm = n", (), ("n", "m")),
        ("f(x)(y)[z]", ("f", "x", "y", "z"), ()),
        ("{k: v for k, v in d.items()}", ("d",), ()),
        ("[x for x in xs if x > t]", ("xs", "t"), ()),
        ("[y for x in xs for y in x]", ("xs",), ()),
        ("[(w := i) for i in r]\nw", ("r", "w"), ("w",)),
        ("[i for i in range(3)]\ni", ("range", "i"), ()),
        ("lambda q: q + z", ("z",), ()),
        ("g = lambda q=d: q", ("d",), ("g",)),
        ("f'{a}{b!r:>{w}}'", ("a", "b", "w"), ()),
        ("a if c else b", ("c", "a", "b"), ()),
    ],
)
def test_inputs_outputs(source: str, inputs: tuple, outputs: tuple) -> None:
    assert io(source) == (inputs, outputs)


@pytest.mark.parametrize(
    ("source", "inputs", "outputs"),
    [
        ("if c:\n    x = 1\nelse:\n    x = 2\ny = x", ("c",), ("x", "y")),
        ("if c:\n    x = 1\ny = x", ("c", "x"), ("x", "y")),
        ("if c:\n    x = 1\nelse:\n    raise V\ny = x", ("c", "V"), ("x", "y")),
        ("for i in r:\n    t = i\nprint(t, i)", ("r", "print", "t", "i"), ("i", "t")),
        ("for i in r:\n    total = total + i", ("r", "total"), ("i", "total")),
        ("while n:\n    n -= 1\n    k = n\nk", ("n", "k"), ("n", "k")),
        ("try:\n    a = 1\nexcept E:\n    a = 2\nb = a", ("E",), ("a", "b")),
        ("try:\n    a = f()\nexcept E:\n    pass\nb = a", ("f", "E", "a"), ("a", "b")),
        ("try:\n    a = 1\nexcept E as e:\n    a = e\nprint(e)", ("E", "print", "e"), ("a",)),
        ("try:\n    a = 1\nfinally:\n    b = 2\nc = a + b", (), ("a", "b", "c")),
        ("with open(p) as fh:\n    d = fh.read()\nd", ("open", "p"), ("fh", "d")),
        ("with suppress(E):\n    d = f()\nd", ("suppress", "E", "f", "d"), ("d",)),
        (
            "match p:\n    case [a, *rest]:\n        pass\n    case {'k': v, **kw}:\n        pass\n"
            "    case Point(x=px) if px > lim:\n        pass\n    case Color.RED | None:\n        pass",
            ("p", "Point", "lim", "Color"),
            ("a", "rest", "v", "kw", "px"),
        ),
        (
            "match p:\n    case [a]:\n        b = a\n    case _:\n        b = 0\nb",
            ("p",),
            ("a", "b"),
        ),
        ("match p:\n    case [a]:\n        b = a\nb", ("p", "b"), ("a", "b")),
    ],
)
def test_control_flow(source: str, inputs: tuple, outputs: tuple) -> None:
    assert io(source) == (inputs, outputs)


def test_nested_scopes_read_at_definition() -> None:
    src = "def f(a, b=B, *, c: T = 1) -> R:\n    y = a + C\n    return helper(y)\n"
    assert io(src) == (("B", "T", "R", "C", "helper"), ("f",))
    assert io("def f(n):\n    return f(n - 1)") == ((), ("f",))  # recursion is not an input
    assert io("K = 1\ndef f():\n    return K") == ((), ("K", "f"))
    assert io("@deco(D)\nclass A(Base, metaclass=M):\n    x = 1\n    y = x + Z\n") == (
        ("deco", "D", "Base", "M", "Z"),
        ("A",),
    )
    # methods do not see the class body: `n` is a global read
    assert io("class A:\n    n = 1\n    def f(self):\n        return n\n")[0] == ("n",)


def test_global_and_nonlocal() -> None:
    src = (
        "def f():\n    global G\n    G = 1\n    def g():\n        nonlocal_free = H\n    return g\n"
    )
    inputs, outputs = io(src)
    assert inputs == ("H",)
    assert set(outputs) == {"G", "f"}
    src = "def f():\n    x = 0\n    def g():\n        nonlocal x\n        x += 1\n    return g\n"
    assert io(src) == ((), ("f",))
    src = "def f():\n    global G\n    return G\n"
    assert io(src) == (("G",), ("f",))


def test_imports_and_definitions() -> None:
    a = analyze_cell(
        "import numpy as np, os.path\nfrom a.b import c, d as e\nfrom x import *\n"
        "def f(): pass\nclass K: pass\nv = 1\n"
    )
    assert a.outputs == ("np", "os", "c", "e", "f", "K", "v")
    assert a.definitions == ("np", "os", "c", "e", "f", "K")
    assert a.inputs == ()


def test_has_result() -> None:
    assert analyze_cell("x = 1\nx").has_result
    assert analyze_cell("print(1)").has_result  # IPython semantics: caller skips None
    assert not analyze_cell("x = 1").has_result
    assert not analyze_cell("x;").has_result  # IPython hides a result ending in ';'
    assert not analyze_cell("x;  # comment\n").has_result
    assert analyze_cell("x  # comment;").has_result
    assert not analyze_cell("").has_result
    assert not analyze_cell("for i in r:\n    i").has_result


def test_ipython_time_magic_binds() -> None:
    cell = (
        "files = get_ipython().getoutput('echo one')\n"
        "get_ipython().run_line_magic('time', 'w = n * 2')\n"
        "get_ipython().run_cell_magic('time', '', 'z = w + q\\n')\n"
    )
    inputs, outputs = io(cell)
    assert outputs == ("files", "w", "z")
    assert inputs == ("get_ipython", "n", "q")
    assert io("get_ipython().run_line_magic('timeit', 'v = 1')") == (("get_ipython",), ())


def test_syntax_error_propagates() -> None:
    with pytest.raises(SyntaxError):
        analyze_cell("x = (")


def test_normalize_ignores_comments_formatting_docstrings() -> None:
    a = 'def f(x):\n    """Doc."""\n    # comment\n    return (x +\n            1)\n'
    b = "def f(x):  # other\n    return x + 1\n"
    c = "def f(x):\n    return x + 2\n"
    assert normalize_source(a) == normalize_source(b)
    assert normalize_source(a) != normalize_source(c)
    assert normalize_source('"""module doc"""\nx = 1') == normalize_source("x = 1")
    assert normalize_source("class A:\n    'doc'\n    x = 1") == normalize_source(
        "class A:\n    x = 1"
    )
    assert "lineno" not in normalize_source(a)
    assert normalize_source(a) == normalize_source(a)


def test_normalize_dedents_methods() -> None:
    method = "    def m(self):\n        return 1\n"
    assert normalize_source(method) == normalize_source("def m(self):\n    return 1\n")
    odd = '    def m(self):\n        s = """\nflush left\n"""\n        return s\n'
    assert "flush left" in normalize_source(odd)


def test_free_names() -> None:
    src = (
        "    @dec(D)\n    def m(self, x=X, *args, **kw):\n        '''doc'''\n"
        "        y = [i for i in x if i > T]\n        z = lambda q: q + W\n"
        "        return helper(y) + self.z + np.sum(y) + len(args)\n"
    )
    assert free_names(src) == ("D", "T", "W", "X", "dec", "helper", "len", "np")
    assert free_names("def f(n):\n    return f(n - 1)") == ("f",)
    assert free_names("def f():\n    global G\n    G = 1\n    return G") == ("G",)
    assert free_names("def f():\n    import os\n    return os.sep") == ()
    assert free_names("class A(B):\n    n = 1\n    m = n\n    def f(self):\n        return n") == (
        "B",
        "n",
    )
    assert free_names("def f():\n    try:\n        pass\n    except E as e:\n        return e") == (
        "E",
    )


def test_sink_names() -> None:
    src = "def f(x):\n    CALLS.append(x)\n    log.info('x')\n    return x + K + len(SEEN)\n"
    assert sink_names(src) == {"CALLS", "log"}
    both = "def f(x):\n    CALLS.append(x)\n    return len(CALLS)\n"
    assert sink_names(both) == frozenset()


def test_names_interpolated_by_ipython_are_inputs() -> None:
    # what `out = !echo $who {n + 1} $$HOME {d[1:3]}` and `%cd $folder` become
    cell = ("out = get_ipython().getoutput('echo $who {n + 1} $$HOME {d[1:3]} $cfg.path')\n"
            "get_ipython().run_line_magic('cd', '$folder')\n"
            "get_ipython().system('echo {unbalanced')\n")
    assert set(analyze_cell(cell).inputs) == {"who", "n", "d", "cfg", "get_ipython", "folder"}


def test_deleted_names_and_star_imports() -> None:
    found = analyze_cell("tmp = 1\ndel tmp, raw\nfrom math import *\ndef f():\n    del local")
    assert found.deleted == ("tmp", "raw") and found.star_import
    assert found.inputs == ("raw",)
    assert not analyze_cell("x;").has_result and analyze_cell("x;").silenced
    assert not analyze_cell("x = 1;").silenced  # nothing to hide


def test_generators_seeded_before_anything_could_draw() -> None:
    assert analyze_cell("import numpy as np\nnp.random.seed(1)\nrandom.seed(2)\nx = f()").seeds == ("numpy", "random")
    assert analyze_cell("x = np.random.rand()\nnp.random.seed(1)").seeds == ()  # drew first
    assert analyze_cell("n = 3\nnumpy.random.seed(n)").seeds == ("numpy",)


def test_function_seeds_reads_the_body_of_a_def_as_indented_and_decorated_in_its_source() -> None:
    method = """
    @tc.task(name="sim")
    def simulate(self, alpha, seed):
        \"\"\"One run.\"\"\"
        import numpy as np
        np.random.seed(seed)
        return np.random.rand() * alpha
    """
    assert function_seeds(method) == ("numpy",)
    assert function_seeds("async def f(s):\n    random.seed(s)\n    return random.random()\n"
                          ) == ("random",)
    assert function_seeds("def f(s):\n    x = g()\n    random.seed(s)\n") == ()  # g may draw
    assert function_seeds("f = tc.task(lambda s: random.seed(s))") == ()  # not a def
    assert function_seeds("") == () and function_seeds("def (") == ()
